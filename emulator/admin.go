package emulator

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// admin serves the emulator's control endpoints (not part of AWS):
//
//	POST /_emulator/fail?n=3&status=500&type=InternalServerException  next n CreateSession calls fail
//	POST /_emulator/latency?d=250ms                                     add latency to every answer
//	POST /_emulator/clock?now=2026-01-02T15:04:05Z                      freeze the clock ("" = real time)
//	GET  /_emulator/stats                                               counters as JSON
//	GET  /_emulator/sessions[?access_key_id=ASIA…]                      issued sessions: account, role, tags, source identity, origin identity, chain (no secrets)
//	GET  /_emulator/profiles[?arn=…]                                     profiles as `aws rolesanywhere get-profile` shows them (tipConfiguration, attributeMappings, session policies)
func (e *Emulator) admin(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	bad := func(msg string) { writeError(w, validation("%s", msg)) }
	if r.URL.Path == "/_emulator/stats" {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(e.Stats())
		return
	}
	if r.URL.Path == "/_emulator/profiles" {
		views := e.Profiles(q.Get("arn"))
		if q.Get("arn") != "" && len(views) == 0 {
			writeError(w, notFound("profile %s not found", q.Get("arn")))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(views)
		return
	}
	if r.URL.Path == "/_emulator/sessions" {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(e.Sessions(q.Get("access_key_id")))
		return
	}
	if r.Method != http.MethodPost {
		writeError(w, &apiError{http.StatusMethodNotAllowed, "ValidationException", "admin changes are POST"})
		return
	}
	switch r.URL.Path {
	case "/_emulator/fail":
		n, err1 := strconv.Atoi(q.Get("n"))
		status, err2 := strconv.Atoi(q.Get("status"))
		if err1 != nil || err2 != nil || n < 0 || status < 400 || status > 599 {
			bad("want n=<count>&status=<400..599>&type=<error type>")
			return
		}
		typ := q.Get("type")
		if typ == "" {
			typ = map[bool]string{true: "InternalServerException", false: "ValidationException"}[status >= 500]
			if status == 429 {
				typ = "ThrottlingException"
			}
		}
		e.FailNext(n, status, typ)
	case "/_emulator/latency":
		d, err := time.ParseDuration(q.Get("d"))
		if err != nil || d < 0 {
			bad("want d=<duration>, e.g. 250ms")
			return
		}
		e.SetLatency(d)
	case "/_emulator/clock":
		if v := q.Get("now"); v == "" {
			e.SetClock(time.Now)
		} else {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				bad("want now=<RFC 3339 time>")
				return
			}
			e.SetClock(func() time.Time { return t })
		}
	default:
		writeError(w, notFound("no admin endpoint %s", r.URL.Path))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ProfileView is one profile as Roles Anywhere's GetProfile returns it (the "profile" member of
// `aws rolesanywhere get-profile`), for GET /_emulator/profiles and `check`.
type ProfileView struct {
	Profile ProfileDetail `json:"profile"`
}

// ProfileDetail is GetProfile's ProfileDetail: the fields the emulator models.
type ProfileDetail struct {
	ProfileArn            string                 `json:"profileArn"`
	ProfileID             string                 `json:"profileId"`
	RoleArns              []string               `json:"roleArns"`
	DurationSeconds       int                    `json:"durationSeconds"`
	AcceptRoleSessionName bool                   `json:"acceptRoleSessionName"`
	Enabled               bool                   `json:"enabled"`
	SessionPolicy         string                 `json:"sessionPolicy,omitempty"`
	ManagedPolicyArns     []string               `json:"managedPolicyArns,omitempty"`
	AttributeMappings     []AttributeMappingView `json:"attributeMappings"`
	TipConfiguration      *TipConfiguration      `json:"tipConfiguration,omitempty"`
}

// TipConfiguration is the tipConfiguration member of a profile.
type TipConfiguration struct {
	Status        string `json:"status"`
	SubjectSource string `json:"subjectSource,omitempty"`
	SubjectType   string `json:"subjectType,omitempty"`
}

// Profiles returns the profiles (only arn's when arn is set) as GetProfile shows them.
func (e *Emulator) Profiles(arn string) []ProfileView {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := []ProfileView{}
	for _, p := range e.cfg.Profiles {
		if arn != "" && p.ARN != arn {
			continue
		}
		d := ProfileDetail{ProfileArn: p.ARN, ProfileID: p.ARN[strings.LastIndex(p.ARN, "/")+1:], RoleArns: p.RoleARNs,
			DurationSeconds: p.DurationSeconds, AcceptRoleSessionName: p.AcceptRoleSessionName, Enabled: true,
			SessionPolicy: p.SessionPolicy, ManagedPolicyArns: p.ManagedPolicyARNs, AttributeMappings: viewMappings(p.effectiveMappings())}
		if p.TIP != nil {
			d.TipConfiguration = &TipConfiguration{Status: p.TIP.Status, SubjectSource: p.TIP.SubjectSource, SubjectType: p.TIP.SubjectType}
		}
		out = append(out, ProfileView{d})
	}
	return out
}
