package main

import (
	"encoding/json"
	"io"
	"math"
	"time"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

// jsonView prints JSON lines for other tools: one object per tick and per
// breaker transition, then the summary. Every object has "type" ("tick",
// "event" or "summary") and "elapsed_s", seconds since the story began.
// Tick counts are cumulative. Durations that never ended are null.
type jsonView struct {
	enc *json.Encoder
}

func newJSONView(w io.Writer) *jsonView {
	return &jsonView{enc: json.NewEncoder(w)}
}

type jsonTick struct {
	Type           string       `json:"type"` // "tick"
	Elapsed        float64      `json:"elapsed_s"`
	Phase          string       `json:"phase"` // "healthy", "outage" or "recovery"
	State          string       `json:"state"` // the breaker's: "closed", "half-open" or "open"
	WithBreaker    jsonProgress `json:"with_breaker"`
	WithoutBreaker jsonProgress `json:"without_breaker"`
}

type jsonProgress struct {
	Sent    uint64 `json:"sent"`    // calls started
	Reached uint64 `json:"reached"` // calls the dependency received
	Refused uint64 `json:"refused"` // calls the breaker refused at once
	Failed  uint64 `json:"failed"`  // 5xx, timeouts and other errors
	OK      uint64 `json:"ok"`      // answers below 500
}

type jsonEvent struct {
	Type    string  `json:"type"` // "event"
	Elapsed float64 `json:"elapsed_s"`
	Seq     uint64  `json:"seq"`
	From    string  `json:"from"`
	To      string  `json:"to"`
	Reason  string  `json:"reason"`
}

type jsonSummary struct {
	Type           string     `json:"type"` // "summary"
	Elapsed        float64    `json:"elapsed_s"`
	Interrupted    bool       `json:"interrupted"` // stopped early: the numbers so far
	OutageStart    float64    `json:"outage_start_s"`
	OutageLength   float64    `json:"outage_length_s"`
	WithBreaker    jsonRun    `json:"with_breaker"`
	WithoutBreaker jsonRun    `json:"without_breaker"`
	BreakerCounts  jsonCounts `json:"breaker_counts"`
}

type jsonRun struct {
	Sent             uint64   `json:"sent"`
	OutageReached    uint64   `json:"outage_reached"`
	OutageRefused    uint64   `json:"outage_refused"`
	OutageFailed     uint64   `json:"outage_failed"`
	OutageCalls      int      `json:"outage_calls"` // calls whose latency was measured
	OutageP50        *float64 `json:"outage_p50_ms"`
	OutageP99        *float64 `json:"outage_p99_ms"`
	OutageToOpen     *float64 `json:"outage_to_open_s"`
	RecoveryToClosed *float64 `json:"recovery_to_closed_s"`
	RecoveryToOK     *float64 `json:"recovery_to_ok_s"` // until a caller first got a 200
}

type jsonCounts struct {
	Requests            uint64 `json:"requests"`
	Rejected            uint64 `json:"rejected"`
	Successes           uint64 `json:"successes"`
	Failures            uint64 `json:"failures"`
	Ignored             uint64 `json:"ignored"`
	ConsecutiveFailures uint64 `json:"consecutive_failures"`
}

// begin prints nothing: the summary repeats the schedule.
func (v *jsonView) begin(config, side, side) {}

// phase prints nothing: every tick names its phase.
func (v *jsonView) phase(time.Duration, phase) {}

func (v *jsonView) event(elapsed time.Duration, ev actor.Event) {
	v.enc.Encode(toJSONEvent(elapsed, ev))
}

func toJSONEvent(elapsed time.Duration, ev actor.Event) jsonEvent {
	return jsonEvent{
		Type:    "event",
		Elapsed: secondsJSON(elapsed),
		Seq:     ev.Seq,
		From:    ev.From.String(),
		To:      ev.To.String(),
		Reason:  ev.Reason,
	}
}

func (v *jsonView) tick(elapsed time.Duration, p phase, state actor.State, with, without progress) {
	v.enc.Encode(jsonTick{
		Type:           "tick",
		Elapsed:        secondsJSON(elapsed),
		Phase:          p.String(),
		State:          state.String(),
		WithBreaker:    toJSONProgress(with),
		WithoutBreaker: toJSONProgress(without),
	})
}

func toJSONProgress(p progress) jsonProgress {
	return jsonProgress{Sent: p.sent, Reached: p.reached, Refused: p.refused, Failed: p.failed, OK: p.ok}
}

func (v *jsonView) end(s summary) {
	out := jsonSummary{
		Type:           "summary",
		Elapsed:        secondsJSON(s.elapsed),
		Interrupted:    s.interrupted,
		OutageStart:    secondsJSON(s.outageStart),
		OutageLength:   secondsJSON(s.outageLength),
		WithBreaker:    toJSONRun(s.with),
		WithoutBreaker: toJSONRun(s.without),
		BreakerCounts: jsonCounts{
			Requests:            s.counts.Requests,
			Rejected:            s.counts.Rejected,
			Successes:           s.counts.Successes,
			Failures:            s.counts.Failures,
			Ignored:             s.counts.Ignored,
			ConsecutiveFailures: s.counts.ConsecutiveFailures,
		},
	}
	v.enc.Encode(out)
}

func toJSONRun(r runSummary) jsonRun {
	out := jsonRun{
		Sent:             r.sent,
		OutageReached:    r.outageReached,
		OutageRefused:    r.outageRefused,
		OutageFailed:     r.outageFailed,
		OutageCalls:      r.outageLatency.n,
		OutageToOpen:     optionalSeconds(r.outageToOpen),
		RecoveryToClosed: optionalSeconds(r.recoveryToClosed),
		RecoveryToOK:     optionalSeconds(r.recoveryToOK),
	}
	if r.outageLatency.n > 0 {
		out.OutageP50 = millisecondsJSON(r.outageLatency.p50)
		out.OutageP99 = millisecondsJSON(r.outageLatency.p99)
	}
	return out
}

// secondsJSON is d in seconds, to the millisecond.
func secondsJSON(d time.Duration) float64 {
	return math.Round(d.Seconds()*1000) / 1000
}

func optionalSeconds(d *time.Duration) *float64 {
	if d == nil {
		return nil
	}
	s := secondsJSON(*d)
	return &s
}

// millisecondsJSON is d in milliseconds, to the microsecond.
func millisecondsJSON(d time.Duration) *float64 {
	ms := math.Round(float64(d)/float64(time.Microsecond)) / 1000
	return &ms
}
