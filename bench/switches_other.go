//go:build !linux

package bench

const canCountSwitches = false

func switches() int64 { return 0 }
