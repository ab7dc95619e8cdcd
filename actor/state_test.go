package actor

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestStateTextRoundTrip(t *testing.T) {
	for _, s := range []State{StateClosed, StateHalfOpen, StateOpen, StateForcedOpen, StateDisabled} {
		text, err := s.MarshalText()
		if err != nil || string(text) != s.String() {
			t.Fatalf("MarshalText(%d) = %q, %v; want %q", int(s), text, err, s.String())
		}
		var back State
		if err := back.UnmarshalText(text); err != nil || back != s {
			t.Fatalf("UnmarshalText(%q) = %v, %v", text, back, err)
		}
	}
	if got := StateForcedOpen.String() + " " + StateDisabled.String(); got != "forced-open disabled" {
		t.Fatalf("String = %q", got)
	}
	js, err := json.Marshal(map[string]State{"users": StateOpen})
	if err != nil || string(js) != `{"users":"open"}` {
		t.Fatalf("json = %s, %v; want the state's name", js, err)
	}
}

func TestStateTextRejectsAnythingElse(t *testing.T) {
	for _, text := range []string{"", "Open", "OPEN", "half_open", "2", " open"} {
		s := StateHalfOpen
		if err := s.UnmarshalText([]byte(text)); !errors.Is(err, ErrInvalid) || s != StateHalfOpen {
			t.Fatalf("UnmarshalText(%q) = %v, left %v; want an ErrInvalid error and no change", text, err, s)
		}
	}
	if _, err := State(7).MarshalText(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("MarshalText(7) = %v, want an error", err)
	}
	if State(-1).String() != "State(-1)" {
		t.Fatal(State(-1).String())
	}
}
