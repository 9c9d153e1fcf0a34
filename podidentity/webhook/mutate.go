// Package webhook is pod identity's mutating admission webhook: for a pod that opted in, it adds what an
// AWS SDK in the pod needs to ask the node's bridge for credentials, as EKS's pod identity webhook does
// for EKS Pod Identity: a projected service-account token volume (audience "spiffe-aws-bridge", one day),
// mounted read-only in every container and init container, and the two environment variables
// AWS_CONTAINER_CREDENTIALS_FULL_URI (the node bridge's link-local address) and
// AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (the token in that volume).
//
// Which pods are sent to the webhook is the MutatingWebhookConfiguration's business (the chart selects the
// namespaces and pods labelled spiffe-aws-bridge.io/pod-identity=enabled); the webhook itself leaves alone
// a pod labelled or annotated spiffe-aws-bridge.io/pod-identity=disabled, a container that already chose
// its container credentials (sets one of the AWS_CONTAINER_* variables, or mounts something else at the
// token directory), and everything it injected before (a second pass changes nothing).
package webhook

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// What the webhook adds, and the pod label and annotation it honours.
const (
	// OptLabel is the namespace and pod label that opts in ("enabled", through the chart's selectors), and
	// the pod label or annotation that opts out ("disabled", checked by the webhook itself).
	OptLabel = "spiffe-aws-bridge.io/pod-identity"
	// OptIn and OptOut are OptLabel's values.
	OptIn, OptOut = "enabled", "disabled"

	// VolumeName names the projected service-account token volume in the pod.
	VolumeName = "spiffe-aws-bridge-token"
	// MountPath is where every container gets the volume, read-only.
	MountPath = "/var/run/secrets/spiffe-aws-bridge/serviceaccount"
	// TokenFile is the token's file name in the volume.
	TokenFile = "token"

	// EnvFullURI and EnvTokenFile are the variables the webhook sets; AWS SDKs read them as container
	// credentials (the token file's content is sent as the Authorization header).
	EnvFullURI   = "AWS_CONTAINER_CREDENTIALS_FULL_URI"
	EnvTokenFile = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"

	// DefaultAudience is the token's audience, the one the node bridge's pod_identity block expects.
	DefaultAudience = "spiffe-aws-bridge"
	// DefaultCredentialsURI is the node bridge's default pod_identity listen address, as AWS SDKs want it.
	DefaultCredentialsURI = "http://169.254.170.23/v1/credentials"
	// DefaultExpirationSeconds is the token's lifetime, as EKS's (the kubelet renews it at 80%).
	DefaultExpirationSeconds = 86400
	// MinExpirationSeconds is the shortest lifetime the API server accepts for a projected token.
	MinExpirationSeconds = 600
)

// userChoices are the variables that mean a container already chose its container credentials: the
// webhook's two, the inline token, and the relative URI (ECS's, which SDKs prefer to the full one).
var userChoices = []string{EnvFullURI, EnvTokenFile, "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"}

// Injection is what the webhook adds to a pod. The zero value is not valid: use NewInjection.
type Injection struct {
	audience          string
	expirationSeconds int64
	credentialsURI    string
}

// InjectionOptions configures NewInjection; the zero value gives the defaults.
type InjectionOptions struct {
	// Audience is the projected token's audience; default DefaultAudience. It must equal the node
	// bridge's pod_identity audience.
	Audience string
	// ExpirationSeconds is the projected token's lifetime; default DefaultExpirationSeconds, at least
	// MinExpirationSeconds.
	ExpirationSeconds int64
	// CredentialsURI is AWS_CONTAINER_CREDENTIALS_FULL_URI's value; default DefaultCredentialsURI. AWS SDKs
	// accept plain http only to loopback and to 169.254.170.2, 169.254.170.23 and [fd00:ec2::23].
	CredentialsURI string
}

// NewInjection checks o and applies its defaults. Errors name the offending option.
func NewInjection(o InjectionOptions) (*Injection, error) {
	in := &Injection{audience: o.Audience, expirationSeconds: o.ExpirationSeconds, credentialsURI: o.CredentialsURI}
	if in.audience == "" {
		in.audience = DefaultAudience
	}
	if strings.TrimSpace(in.audience) != in.audience {
		return nil, fmt.Errorf("webhook: audience %q has leading or trailing spaces", in.audience)
	}
	if in.expirationSeconds == 0 {
		in.expirationSeconds = DefaultExpirationSeconds
	}
	if in.expirationSeconds < MinExpirationSeconds {
		return nil, fmt.Errorf("webhook: token expiration %ds is below the API server's minimum of %ds", in.expirationSeconds, MinExpirationSeconds)
	}
	if in.credentialsURI == "" {
		in.credentialsURI = DefaultCredentialsURI
	}
	u, err := url.Parse(in.credentialsURI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("webhook: credentials URI %q is not an http:// or https:// URL", in.credentialsURI)
	}
	return in, nil
}

// TokenPath is AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE's value.
func TokenPath() string { return path.Join(MountPath, TokenFile) }

// PatchOp is one RFC 6902 JSON Patch operation (the webhook only adds).
type PatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// Result is the outcome of Mutate: the patch (empty when nothing changes) and, for the person creating
// the pod, why a container or the pod was left as it was (admission warnings).
type Result struct {
	Patch    []PatchOp
	Warnings []string
}

// OptedOut reports whether the pod's OptLabel label or annotation is OptOut.
func OptedOut(pod *corev1.Pod) bool {
	return pod.Labels[OptLabel] == OptOut || pod.Annotations[OptLabel] == OptOut
}

// Mutate computes the patch for pod. It adds the token volume once, and the mount and the two variables
// to each container and init container that has not chosen its container credentials already. A pod
// that opted out, or whose every container is skipped, gets an empty patch.
func (in *Injection) Mutate(pod *corev1.Pod) Result {
	var res Result
	if OptedOut(pod) {
		return res
	}
	haveVolume := false
	for _, v := range pod.Spec.Volumes {
		if v.Name != VolumeName {
			continue
		}
		if !in.isOurVolume(v) {
			res.Warnings = append(res.Warnings, fmt.Sprintf(
				"spiffe-aws-bridge: pod identity not injected: the pod already has a volume named %q that is not its projected service-account token volume (audience %q)", VolumeName, in.audience))
			return res
		}
		haveVolume = true
	}
	var ops []PatchOp
	for _, list := range []struct {
		field      string
		containers []corev1.Container
	}{{"initContainers", pod.Spec.InitContainers}, {"containers", pod.Spec.Containers}} {
		for i := range list.containers {
			c := &list.containers[i]
			if why := in.skip(c); why != "" {
				if why != alreadyInjected {
					res.Warnings = append(res.Warnings, fmt.Sprintf("spiffe-aws-bridge: container %q left as it is: %s", c.Name, why))
				}
				continue
			}
			base := fmt.Sprintf("/spec/%s/%d", list.field, i)
			mount := corev1.VolumeMount{Name: VolumeName, MountPath: MountPath, ReadOnly: true}
			if len(c.VolumeMounts) == 0 {
				ops = append(ops, PatchOp{"add", base + "/volumeMounts", []corev1.VolumeMount{mount}})
			} else {
				ops = append(ops, PatchOp{"add", base + "/volumeMounts/-", mount})
			}
			env := []corev1.EnvVar{{Name: EnvFullURI, Value: in.credentialsURI}, {Name: EnvTokenFile, Value: TokenPath()}}
			if len(c.Env) == 0 {
				ops = append(ops, PatchOp{"add", base + "/env", env})
			} else {
				for _, e := range env {
					ops = append(ops, PatchOp{"add", base + "/env/-", e})
				}
			}
		}
	}
	if len(ops) == 0 {
		return res
	}
	if !haveVolume {
		v := in.volume()
		if len(pod.Spec.Volumes) == 0 {
			ops = append([]PatchOp{{"add", "/spec/volumes", []corev1.Volume{v}}}, ops...)
		} else {
			ops = append([]PatchOp{{"add", "/spec/volumes/-", v}}, ops...)
		}
	}
	res.Patch = ops
	return res
}

// alreadyInjected is skip's answer for a container the webhook injected before (no warning).
const alreadyInjected = "already injected"

// skip says why container c gets nothing, or "" to inject it.
func (in *Injection) skip(c *corev1.Container) string {
	for _, e := range c.Env {
		for _, name := range userChoices {
			if e.Name != name {
				continue
			}
			if name == EnvFullURI || name == EnvTokenFile {
				if in.injected(c) {
					return alreadyInjected
				}
			}
			return fmt.Sprintf("it sets %s (the webhook never overrides a container's own choice)", name)
		}
	}
	for _, m := range c.VolumeMounts {
		if path.Clean(m.MountPath) == MountPath {
			return fmt.Sprintf("it mounts volume %q at %s", m.Name, MountPath)
		}
	}
	return ""
}

// injected reports whether c carries exactly what Mutate adds.
func (in *Injection) injected(c *corev1.Container) bool {
	var uri, token, mount bool
	for _, e := range c.Env {
		switch {
		case e.Name == EnvFullURI && e.Value == in.credentialsURI && e.ValueFrom == nil:
			uri = true
		case e.Name == EnvTokenFile && e.Value == TokenPath() && e.ValueFrom == nil:
			token = true
		}
	}
	for _, m := range c.VolumeMounts {
		if m.Name == VolumeName && path.Clean(m.MountPath) == MountPath {
			mount = true
		}
	}
	return uri && token && mount
}

// volume is the projected token volume the webhook adds.
func (in *Injection) volume() corev1.Volume {
	exp := in.expirationSeconds
	return corev1.Volume{
		Name: VolumeName,
		VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Audience: in.audience, ExpirationSeconds: &exp, Path: TokenFile,
			}}},
		}},
	}
}

// isOurVolume reports whether v is a projected token volume for the webhook's audience at TokenFile
// (whatever its lifetime or mode: the API server defaults both).
func (in *Injection) isOurVolume(v corev1.Volume) bool {
	p := v.Projected
	if p == nil || len(p.Sources) != 1 {
		return false
	}
	t := p.Sources[0].ServiceAccountToken
	return t != nil && t.Audience == in.audience && t.Path == TokenFile
}

// MarshalPatch encodes ops as a JSON Patch document.
func MarshalPatch(ops []PatchOp) ([]byte, error) {
	if ops == nil {
		ops = []PatchOp{}
	}
	return json.Marshal(ops)
}
