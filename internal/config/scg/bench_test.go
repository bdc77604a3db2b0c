package scg

import (
	"os"
	"testing"
)

func BenchmarkImport(b *testing.B) {
	data, err := os.ReadFile("testdata/application.yml")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		Import("app.yml", data, noEnv)
	}
}
