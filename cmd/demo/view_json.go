package main

import (
	"encoding/json"
	"io"
	"math"
	"time"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

// jsonView prints JSON lines for other tools: one object per tick, per phase
// change and per breaker transition, then the summary. Every object has
// "type" ("tick", "phase", "event" or "summary") and "elapsed_s", seconds
// since the story began; those about one backend name it in "backend" (and
// "key", its breaker's key in the transport). Tick counts are cumulative.
// Durations that never ended are null.
type jsonView struct {
	enc   *json.Encoder
	sched schedule // set by begin
}

func newJSONView(w io.Writer) *jsonView {
	return &jsonView{enc: json.NewEncoder(w)}
}

type jsonTick struct {
	Type     string         `json:"type"` // "tick"
	Elapsed  float64        `json:"elapsed_s"`
	Backends []jsonHostTick `json:"backends"`
}

type jsonHostTick struct {
	Backend        string       `json:"backend"` // "payments", "search", "profile"
	Phase          string       `json:"phase"`   // "healthy", the trouble ("outage", "throttling"), or "recovery"
	State          string       `json:"state"`   // its breaker's: "closed", "half-open" or "open"
	WithBreaker    jsonProgress `json:"with_breaker"`
	WithoutBreaker jsonProgress `json:"without_breaker"`
}

type jsonProgress struct {
	Sent    uint64 `json:"sent"`    // calls started
	Reached uint64 `json:"reached"` // calls the backend received
	Refused uint64 `json:"refused"` // calls the breaker refused at once
	Failed  uint64 `json:"failed"`  // 5xx and 429 answers, timeouts and other errors
	OK      uint64 `json:"ok"`      // answers below 400
}

type jsonPhase struct {
	Type    string  `json:"type"` // "phase"
	Elapsed float64 `json:"elapsed_s"`
	Backend string  `json:"backend"`
	Phase   string  `json:"phase"`
}

type jsonEvent struct {
	Type    string  `json:"type"` // "event"
	Elapsed float64 `json:"elapsed_s"`
	Backend string  `json:"backend"`
	Key     string  `json:"key"`
	Seq     uint64  `json:"seq"` // per backend
	From    string  `json:"from"`
	To      string  `json:"to"`
	Reason  string  `json:"reason"`
}

type jsonSummary struct {
	Type        string            `json:"type"` // "summary"
	Elapsed     float64           `json:"elapsed_s"`
	Interrupted bool              `json:"interrupted"` // stopped early: the numbers so far
	Backends    []jsonHostSummary `json:"backends"`
}

type jsonHostSummary struct {
	Backend        string     `json:"backend"`
	Key            string     `json:"key"`
	Trouble        string     `json:"trouble"`         // "outage", "throttling"; "" for none
	TroubleStart   float64    `json:"trouble_start_s"` // 0 for none
	TroubleLength  float64    `json:"trouble_length_s"`
	Status         int        `json:"status"`        // the answer during the trouble; 0 for none
	RetryAfter     int        `json:"retry_after_s"` // its Retry-After header; 0: none
	WithBreaker    jsonRun    `json:"with_breaker"`
	WithoutBreaker jsonRun    `json:"without_breaker"`
	BreakerCounts  jsonCounts `json:"breaker_counts"`
}

type jsonRun struct {
	Sent             uint64    `json:"sent"`
	Reached          uint64    `json:"reached"`
	Refused          uint64    `json:"refused"`
	TroubleReached   uint64    `json:"trouble_reached"`
	TroubleRefused   uint64    `json:"trouble_refused"`
	TroubleFailed    uint64    `json:"trouble_failed"`
	Calls            int       `json:"calls"`  // calls whose latency was measured: during the trouble, or all if none
	P50              *float64  `json:"p50_ms"` // of those calls
	P99              *float64  `json:"p99_ms"`
	TroubleToOpen    *float64  `json:"trouble_to_open_s"`
	RecoveryToClosed *float64  `json:"recovery_to_closed_s"`
	RecoveryToOK     *float64  `json:"recovery_to_ok_s"` // until a caller first got a 200
	Opened           int       `json:"opened"`           // times the breaker opened
	OpenPeriods      []float64 `json:"open_periods_s"`   // how long each opening that ended lasted
}

type jsonCounts struct {
	Requests            uint64 `json:"requests"`
	Rejected            uint64 `json:"rejected"`
	Successes           uint64 `json:"successes"`
	Failures            uint64 `json:"failures"`
	Ignored             uint64 `json:"ignored"`
	ConsecutiveFailures uint64 `json:"consecutive_failures"`
}

// begin prints nothing: the summary repeats the scripts.
func (v *jsonView) begin(cfg config, sched schedule, with, without side) {
	v.sched = sched
}

func (v *jsonView) phase(elapsed time.Duration, backend int, p phase) {
	sc := v.sched.scripts[backend]
	v.enc.Encode(jsonPhase{Type: "phase", Elapsed: secondsJSON(elapsed), Backend: sc.name, Phase: sc.phaseName(p)})
}

func (v *jsonView) event(elapsed time.Duration, backend int, ev hostEvent) {
	v.enc.Encode(jsonEvent{
		Type:    "event",
		Elapsed: secondsJSON(elapsed),
		Backend: v.sched.scripts[backend].name,
		Key:     ev.Key,
		Seq:     ev.Seq,
		From:    ev.From.String(),
		To:      ev.To.String(),
		Reason:  ev.Reason,
	})
}

func (v *jsonView) tick(elapsed time.Duration, hosts []hostProgress) {
	out := jsonTick{Type: "tick", Elapsed: secondsJSON(elapsed)}
	for i, h := range hosts {
		sc := v.sched.scripts[i]
		out.Backends = append(out.Backends, jsonHostTick{
			Backend:        sc.name,
			Phase:          sc.phaseName(h.phase),
			State:          h.state.String(),
			WithBreaker:    toJSONProgress(h.with),
			WithoutBreaker: toJSONProgress(h.without),
		})
	}
	v.enc.Encode(out)
}

func toJSONProgress(p progress) jsonProgress {
	return jsonProgress{Sent: p.sent, Reached: p.reached, Refused: p.refused, Failed: p.failed, OK: p.ok}
}

func (v *jsonView) end(s summary) {
	out := jsonSummary{
		Type:        "summary",
		Elapsed:     secondsJSON(s.elapsed),
		Interrupted: s.interrupted,
	}
	for _, h := range s.hosts {
		sc := h.script
		out.Backends = append(out.Backends, jsonHostSummary{
			Backend:        sc.name,
			Key:            h.key,
			Trouble:        sc.trouble,
			TroubleStart:   secondsJSON(sc.start),
			TroubleLength:  secondsJSON(sc.length),
			Status:         sc.status,
			RetryAfter:     sc.retryAfter,
			WithBreaker:    toJSONRun(h.with),
			WithoutBreaker: toJSONRun(h.without),
			BreakerCounts:  toJSONCounts(h.counts),
		})
	}
	v.enc.Encode(out)
}

func toJSONCounts(c actor.Counts) jsonCounts {
	return jsonCounts{
		Requests:            c.Requests,
		Rejected:            c.Rejected,
		Successes:           c.Successes,
		Failures:            c.Failures,
		Ignored:             c.Ignored,
		ConsecutiveFailures: c.ConsecutiveFailures,
	}
}

func toJSONRun(r runSummary) jsonRun {
	out := jsonRun{
		Sent:             r.sent,
		Reached:          r.reached,
		Refused:          r.refused,
		TroubleReached:   r.troubleReached,
		TroubleRefused:   r.troubleRefused,
		TroubleFailed:    r.troubleFailed,
		Calls:            r.latency.n,
		TroubleToOpen:    optionalSeconds(r.troubleToOpen),
		RecoveryToClosed: optionalSeconds(r.recoveryToClosed),
		RecoveryToOK:     optionalSeconds(r.recoveryToOK),
		Opened:           r.opened,
		OpenPeriods:      []float64{},
	}
	for _, d := range r.openPeriods {
		out.OpenPeriods = append(out.OpenPeriods, secondsJSON(d))
	}
	if r.latency.n > 0 {
		out.P50 = millisecondsJSON(r.latency.p50)
		out.P99 = millisecondsJSON(r.latency.p99)
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
