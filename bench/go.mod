module github.com/circuitbreaker-go/circuitbreaker/bench

go 1.25

replace github.com/circuitbreaker-go/circuitbreaker => ../

require (
	github.com/circuitbreaker-go/circuitbreaker v0.0.0-00010101000000-000000000000
	github.com/eapache/go-resiliency v1.7.0
	github.com/failsafe-go/failsafe-go v0.9.8
	github.com/mercari/go-circuitbreaker v0.0.2
	github.com/sony/gobreaker/v2 v2.4.0
)

require (
	github.com/benbjohnson/clock v1.3.5 // indirect
	github.com/bits-and-blooms/bitset v1.24.4 // indirect
	github.com/cenkalti/backoff/v3 v3.1.1 // indirect
	github.com/influxdata/tdigest v0.0.1 // indirect
)
