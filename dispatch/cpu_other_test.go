//go:build !unix

package dispatch_test

import "time"

// processCPU is unknown here: benchmarks report no CPU per delivery.
func processCPU() time.Duration { return 0 }
