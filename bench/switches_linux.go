package bench

import "syscall"

const canCountSwitches = true

// switches returns how many times the OS has preempted the calling thread
// so far (involuntary context switches; not the times it blocked).
func switches() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return ru.Nivcsw
}
