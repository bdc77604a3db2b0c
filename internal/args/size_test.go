package args

import "testing"

func TestParseSize(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int64
		err  bool
	}{
		{name: "bare bytes", in: "5000000", want: 5000000},
		{name: "B suffix", in: "1000B", want: 1000},
		{name: "KB is 1024 as in Spring's DataSize", in: "1KB", want: 1024},
		{name: "MB", in: "5MB", want: 5 << 20},
		{name: "KiB", in: "64KiB", want: 64 << 10},
		{name: "lower case and space", in: "2 mb", want: 2 << 20},
		{name: "unknown unit", in: "5XB", err: true},
		{name: "negative", in: "-1", err: true},
		{name: "empty", in: "", err: true},
		{name: "overflow", in: "99999999999TB", err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSize(tc.in)
			if (err != nil) != tc.err || got != tc.want {
				t.Errorf("ParseSize(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.err)
			}
		})
	}
}
