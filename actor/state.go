package actor

import (
	"fmt"
	"strconv"
)

// State is the state of a breaker. Its text form (String, MarshalText,
// UnmarshalText) is "closed", "half-open", "open", "forced-open" or
// "disabled", so JSON and configuration files say "open", not 2.
type State int

const (
	// StateClosed lets calls through and counts failures.
	StateClosed State = iota
	// StateHalfOpen lets a single probe through; its outcome decides.
	StateHalfOpen
	// StateOpen refuses every call until the retry timer fires.
	StateOpen
	// StateForcedOpen refuses every call until [Breaker.Reset]; no timer
	// runs. See [Breaker.ForceOpen].
	StateForcedOpen
	// StateDisabled grants every call and counts it, but never trips, until
	// [Breaker.Reset]. See [Breaker.Disable].
	StateDisabled
)

var stateNames = [...]string{
	StateClosed:     "closed",
	StateHalfOpen:   "half-open",
	StateOpen:       "open",
	StateForcedOpen: "forced-open",
	StateDisabled:   "disabled",
}

// String returns "closed", "half-open", "open", "forced-open" or "disabled";
// any other value prints as State(n).
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// MarshalText returns the state's String form. A value that is not one of
// the five states is an error.
func (s State) MarshalText() ([]byte, error) {
	if s < 0 || int(s) >= len(stateNames) {
		return nil, fmt.Errorf("%w: cannot marshal %v: not a breaker state", ErrInvalid, s)
	}
	return []byte(stateNames[s]), nil
}

// UnmarshalText parses exactly one of the String forms (case-sensitive);
// anything else, the empty text included, is an error and leaves s as it was.
func (s *State) UnmarshalText(text []byte) error {
	for st, name := range stateNames {
		if string(text) == name {
			*s = State(st)
			return nil
		}
	}
	return fmt.Errorf("%w: %q is not a breaker state (want closed, half-open, open, forced-open or disabled)", ErrInvalid, text)
}

// Outcome says how a report is counted.
type Outcome int

const (
	// Success ends a run of failures; a successful probe closes the breaker.
	Success Outcome = iota + 1
	// Failure extends the run of consecutive failures; a failed probe
	// re-opens the breaker.
	Failure
	// Ignored is neither success nor failure: it changes no state. An ignored
	// probe leaves the breaker half-open and lets the next permit probe.
	Ignored
)

// String returns "success", "failure" or "ignored".
func (o Outcome) String() string {
	switch o {
	case Success:
		return "success"
	case Failure:
		return "failure"
	case Ignored:
		return "ignored"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

func (o Outcome) valid() bool { return o >= Success && o <= Ignored }
