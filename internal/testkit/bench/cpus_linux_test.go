package bench

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// testCPUs picks the load generator's and the proxies' CPUs among those this
// process may run on: the first two, or the only one.
func testCPUs() (load, proxy string) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return "0", "0"
	}
	var ids []int
	for i := 0; i < len(set)*64 && len(ids) < 2; i++ {
		if set.IsSet(i) {
			ids = append(ids, i)
		}
	}
	if len(ids) == 0 {
		return "0", "0"
	}
	return strconv.Itoa(ids[0]), strconv.Itoa(ids[len(ids)-1])
}
