package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/hashicorp/go-hclog"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MaxReviewBytes bounds an AdmissionReview's body. The API server sends the pod being created (an object
// in etcd is at most 1.5 MiB by default), so a larger body is not from it.
const MaxReviewBytes = 4 << 20

// MutatePath is the path the MutatingWebhookConfiguration calls.
const MutatePath = "/mutate"

// HealthPath answers 200 for the kubelet's probes once the server has a certificate to serve.
const HealthPath = "/healthz"

// Handler answers AdmissionReview v1 requests for pods with the Injection's patch. Anything but a pod's
// CREATE is allowed unchanged; a body that is not an AdmissionReview v1 with a request gets 400 (the API
// server then applies the webhook's failurePolicy).
type Handler struct {
	inj *Injection
	log hclog.Logger
}

// NewHandler returns the admission handler for inj; log receives one line per pod at debug level
// (namespace, name, what was done), never the pod's spec.
func NewHandler(inj *Injection, log hclog.Logger) *Handler {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Handler{inj: inj, log: log}
}

// ServeHTTP implements http.Handler for MutatePath.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "admission reviews are POSTed", http.StatusMethodNotAllowed)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		http.Error(w, fmt.Sprintf("Content-Type %q: an AdmissionReview is application/json", r.Header.Get("Content-Type")), http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxReviewBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("AdmissionReview larger than %d bytes", MaxReviewBytes), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading the AdmissionReview: "+err.Error(), http.StatusBadRequest)
		return
	}
	review, err := h.Review(body)
	if err != nil {
		h.log.Warn("refused an admission request", "error", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	out, err := json.Marshal(review)
	if err != nil {
		http.Error(w, "encoding the AdmissionReview: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

var podResource = metav1.GroupVersionResource{Version: "v1", Resource: "pods"}

// Review answers one AdmissionReview v1 (the request body) with the AdmissionReview to send back. It fails
// on a body that is not an AdmissionReview v1 with a request, or a pod that does not decode; the error
// says which.
func (h *Handler) Review(body []byte) (*admissionv1.AdmissionReview, error) {
	var in admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, fmt.Errorf("decoding the AdmissionReview: %w", err)
	}
	if want := admissionv1.SchemeGroupVersion.String(); in.APIVersion != want || in.Kind != "AdmissionReview" {
		return nil, fmt.Errorf("got apiVersion %q kind %q, want %s AdmissionReview (set admissionReviewVersions: [v1])", in.APIVersion, in.Kind, want)
	}
	req := in.Request
	if req == nil {
		return nil, fmt.Errorf("the AdmissionReview has no request")
	}
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	out := &admissionv1.AdmissionReview{TypeMeta: in.TypeMeta, Response: resp}
	if req.Resource != podResource || req.SubResource != "" || req.Operation != admissionv1.Create {
		return out, nil
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return nil, fmt.Errorf("decoding the pod of request %s: %w", req.UID, err)
	}
	name := pod.Name
	if name == "" {
		name = pod.GenerateName + "*"
	}
	res := h.inj.Mutate(&pod)
	resp.Warnings = res.Warnings
	if len(res.Patch) == 0 {
		h.log.Debug("pod left unchanged", "namespace", req.Namespace, "pod", name, "opted_out", OptedOut(&pod), "warnings", len(res.Warnings))
		return out, nil
	}
	patch, err := MarshalPatch(res.Patch)
	if err != nil {
		return nil, fmt.Errorf("encoding the patch for request %s: %w", req.UID, err)
	}
	pt := admissionv1.PatchTypeJSONPatch
	resp.Patch, resp.PatchType = patch, &pt
	h.log.Debug("pod identity injected", "namespace", req.Namespace, "pod", name, "operations", len(res.Patch))
	return out, nil
}
