package actor

import (
	"testing"
	"time"

	"github.com/benbjohnson/clock"
)

// The state machine, without goroutines or clocks: time is an argument.

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newTestMachine() *machine {
	return newMachine("m", clock.NewMock(), 3, 30*time.Second, 10*time.Second)
}

// halfOpenMachine returns a machine (allowed fails 1) that has tripped at t0
// and whose retry timer has fired: half-open at t0+30s, no probe out.
func halfOpenMachine(t *testing.T) *machine {
	t.Helper()
	m := newTestMachine()
	m.allowedFails = 1
	tk, _ := m.acquire(t0)
	settleOK(t, m, t0, tk, Failure)
	if ev, _ := m.timerFired(); ev == nil || ev.To != StateHalfOpen {
		t.Fatalf("retry timer: %+v, want half-open", ev)
	}
	return m
}

func settleOK(t *testing.T, m *machine, now time.Time, tk ticket, o Outcome) *Event {
	t.Helper()
	applied, ev := m.settle(now, tk, o, 0)
	if !applied {
		t.Fatalf("settle(%v) not applied in %v gen %d", o, m.state, m.gen)
	}
	return ev
}

func TestMachineTripsAndSchedulesRetry(t *testing.T) {
	m := newTestMachine()
	tk, refusal := m.acquire(t0)
	if refusal != nil || tk.probe {
		t.Fatalf("closed acquire = %+v, %v", tk, refusal)
	}
	for i := range 2 {
		if ev := settleOK(t, m, t0, tk, Failure); ev != nil {
			t.Fatalf("failure %d made a transition", i+1)
		}
	}
	seq := m.timerSeq
	ev := settleOK(t, m, t0.Add(time.Second), tk, Failure)
	want := Event{Seq: 1, Breaker: "m", From: StateClosed, To: StateOpen, At: t0.Add(time.Second), Reason: "3 consecutive failures"}
	if ev == nil || *ev != want {
		t.Fatalf("event = %+v, want %+v", ev, want)
	}
	if !m.deadline.Equal(t0.Add(31*time.Second)) || m.timerSeq == seq {
		t.Fatalf("deadline = %v (timerSeq %d -> %d), want retry armed at +31s", m.deadline, seq, m.timerSeq)
	}
	if _, refusal := m.acquire(t0.Add(11 * time.Second)); refusal == nil || !refusal.Until.Equal(t0.Add(31*time.Second)) {
		t.Fatalf("open acquire refusal = %+v, want Until t0+31s", refusal)
	}
	if applied, _ := m.settle(t0, tk, Success, 0); applied {
		t.Fatal("stale ticket applied")
	}
}

func TestMachineHalfOpenProbeCycle(t *testing.T) {
	m := newTestMachine()
	tk, _ := m.acquire(t0)
	for range 3 {
		settleOK(t, m, t0, tk, Failure)
	}
	ev, failed := m.timerFired()
	if ev == nil || ev.To != StateHalfOpen || !ev.At.Equal(t0.Add(30*time.Second)) || failed {
		t.Fatalf("retry timer: %+v failed=%v", ev, failed)
	}
	if !m.deadline.IsZero() {
		t.Fatal("half-open with no probe out still wants a timer")
	}

	now := t0.Add(40 * time.Second)
	probe, refusal := m.acquire(now)
	if refusal != nil || !probe.probe || !m.deadline.Equal(now.Add(10*time.Second)) {
		t.Fatalf("probe = %+v, %v, deadline %v", probe, refusal, m.deadline)
	}
	if _, refusal := m.acquire(now.Add(4 * time.Second)); refusal == nil || refusal.State != StateHalfOpen || !refusal.Until.Equal(now.Add(10*time.Second)) {
		t.Fatalf("second acquire in half-open = %+v, want refused, 6s", refusal)
	}

	// Ignored frees the probe, with no transition.
	if ev := settleOK(t, m, now, probe, Ignored); ev != nil || m.probeOut || !m.deadline.IsZero() {
		t.Fatalf("ignored probe: ev %+v probeOut %v deadline %v", ev, m.probeOut, m.deadline)
	}
	probe, _ = m.acquire(now)
	if ev := settleOK(t, m, now, probe, Success); ev == nil || ev.To != StateClosed || ev.Reason != "probe succeeded" || m.failures != 0 {
		t.Fatalf("probe success: %+v failures %d", ev, m.failures)
	}
	if m.seq != 3 || m.gen != 3 {
		t.Fatalf("seq %d gen %d, want 3 and 3", m.seq, m.gen)
	}
}

func TestMachineProbeTimeoutReopensFromDeadline(t *testing.T) {
	m := halfOpenMachine(t)
	probe, _ := m.acquire(t0.Add(30 * time.Second))
	ev, failed := m.timerFired()
	due := t0.Add(40 * time.Second)
	if ev == nil || ev.To != StateOpen || !ev.At.Equal(due) || !failed || ev.Reason != "probe not reported within 10s" {
		t.Fatalf("probe timeout: %+v failed=%v", ev, failed)
	}
	if !m.deadline.Equal(due.Add(30*time.Second)) || m.failures != 2 {
		t.Fatalf("deadline %v failures %d, want retry from the probe's due time and 2 failures", m.deadline, m.failures)
	}
	if applied, _ := m.settle(due, probe, Success, 0); applied {
		t.Fatal("late probe report applied")
	}
}

func TestMachineProbeFailureReopens(t *testing.T) {
	m := halfOpenMachine(t)
	now := t0.Add(35 * time.Second)
	probe, _ := m.acquire(now)
	ev := settleOK(t, m, now, probe, Failure)
	if ev == nil || ev.To != StateOpen || ev.Reason != "probe failed" || !m.deadline.Equal(now.Add(30*time.Second)) {
		t.Fatalf("probe failure: %+v deadline %v", ev, m.deadline)
	}
}

func TestMachineReleaseFreesProbeWithoutCounting(t *testing.T) {
	m := halfOpenMachine(t)
	probe, _ := m.acquire(t0)
	failures := m.failures
	if ev := settleOK(t, m, t0, probe, release); ev != nil || m.probeOut || m.failures != failures {
		t.Fatalf("release: %+v probeOut %v failures %d", ev, m.probeOut, m.failures)
	}
	// A non-probe ticket of the half-open generation is not the probe.
	if applied, _ := m.settle(t0, ticket{gen: m.gen}, Success, 0); applied {
		t.Fatal("non-probe ticket applied in half-open")
	}
}

func TestMachineSpuriousTimerIsIgnored(t *testing.T) {
	m := newTestMachine()
	if ev, failed := m.timerFired(); ev != nil || failed {
		t.Fatalf("timer in closed: %+v %v", ev, failed)
	}
}
