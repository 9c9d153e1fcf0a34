package webhook

import (
	"encoding/json"
	"strings"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The patch, as JSON, for the expectations below: the volume and the two additions to a container.
const (
	wantVolume = `{"name":"spiffe-aws-bridge-token","projected":{"sources":[{"serviceAccountToken":{"audience":"spiffe-aws-bridge","expirationSeconds":86400,"path":"token"}}]}}`
	wantMount  = `{"name":"spiffe-aws-bridge-token","readOnly":true,"mountPath":"/var/run/secrets/spiffe-aws-bridge/serviceaccount"}`
	wantURI    = `{"name":"AWS_CONTAINER_CREDENTIALS_FULL_URI","value":"http://169.254.170.23/v1/credentials"}`
	wantToken  = `{"name":"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE","value":"/var/run/secrets/spiffe-aws-bridge/serviceaccount/token"}`
)

func op(path, value string) string { return `{"op":"add","path":"` + path + `","value":` + value + `}` }

func TestMutatePatch(t *testing.T) {
	inj, err := NewInjection(InjectionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := func(name string) corev1.Container { return corev1.Container{Name: name, Image: "app"} }
	tests := []struct {
		name     string
		pod      corev1.Pod
		want     []string // the patch's operations, in order
		warnings []string // substrings, one per warning
	}{
		{
			name: "a bare pod gets the volume, the mount and both variables",
			pod:  corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{c("app")}}},
			want: []string{
				op("/spec/volumes", "["+wantVolume+"]"),
				op("/spec/containers/0/volumeMounts", "["+wantMount+"]"),
				op("/spec/containers/0/env", "["+wantURI+","+wantToken+"]"),
			},
		},
		{
			name: "existing volumes, mounts and variables are appended to, never replaced",
			pod: corev1.Pod{Spec: corev1.PodSpec{
				Volumes: []corev1.Volume{{Name: "data"}},
				Containers: []corev1.Container{{Name: "app", Env: []corev1.EnvVar{{Name: "A", Value: "1"}},
					VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}},
			}},
			want: []string{
				op("/spec/volumes/-", wantVolume),
				op("/spec/containers/0/volumeMounts/-", wantMount),
				op("/spec/containers/0/env/-", wantURI),
				op("/spec/containers/0/env/-", wantToken),
			},
		},
		{
			name: "init containers (sidecars among them) and every container are injected",
			pod: corev1.Pod{Spec: corev1.PodSpec{
				InitContainers: []corev1.Container{c("init")},
				Containers:     []corev1.Container{c("a"), c("b")},
			}},
			want: []string{
				op("/spec/volumes", "["+wantVolume+"]"),
				op("/spec/initContainers/0/volumeMounts", "["+wantMount+"]"),
				op("/spec/initContainers/0/env", "["+wantURI+","+wantToken+"]"),
				op("/spec/containers/0/volumeMounts", "["+wantMount+"]"),
				op("/spec/containers/0/env", "["+wantURI+","+wantToken+"]"),
				op("/spec/containers/1/volumeMounts", "["+wantMount+"]"),
				op("/spec/containers/1/env", "["+wantURI+","+wantToken+"]"),
			},
		},
		{
			name: "a container that sets AWS_CONTAINER_CREDENTIALS_FULL_URI is left alone, the others are injected",
			pod: corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "own", Env: []corev1.EnvVar{{Name: EnvFullURI, Value: "http://127.0.0.1:9911/creds"}}}, c("app"),
			}}},
			want: []string{
				op("/spec/volumes", "["+wantVolume+"]"),
				op("/spec/containers/1/volumeMounts", "["+wantMount+"]"),
				op("/spec/containers/1/env", "["+wantURI+","+wantToken+"]"),
			},
			warnings: []string{`container "own" left as it is: it sets AWS_CONTAINER_CREDENTIALS_FULL_URI`},
		},
		{
			name:     "a container that sets only the token file is left alone; with no container left, no volume either",
			pod:      corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "own", Env: []corev1.EnvVar{{Name: EnvTokenFile, Value: "/mine"}}}}}},
			warnings: []string{`container "own" left as it is: it sets AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`},
		},
		{
			name:     "the inline token is a choice too",
			pod:      corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "own", Env: []corev1.EnvVar{{Name: "AWS_CONTAINER_AUTHORIZATION_TOKEN", Value: "x"}}}}}},
			warnings: []string{`it sets AWS_CONTAINER_AUTHORIZATION_TOKEN `},
		},
		{
			name:     "ECS's relative URI, which SDKs prefer to the full one, is a choice too",
			pod:      corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "own", Env: []corev1.EnvVar{{Name: "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", Value: "/v2/x"}}}}}},
			warnings: []string{`it sets AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`},
		},
		{
			name: "a container mounting something else at the token directory is left alone",
			pod: corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "own",
				VolumeMounts: []corev1.VolumeMount{{Name: "mine", MountPath: MountPath + "/"}}}}}},
			warnings: []string{`it mounts volume "mine" at ` + MountPath},
		},
		{
			name: "a pod labelled disabled is left alone",
			pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{OptLabel: OptOut}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{c("app")}}},
		},
		{
			name: "a pod annotated disabled is left alone",
			pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{OptLabel: OptOut}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{c("app")}}},
		},
		{
			name: "a pod whose volume of that name is something else is left alone",
			pod: corev1.Pod{Spec: corev1.PodSpec{Volumes: []corev1.Volume{{Name: VolumeName,
				VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
				Containers: []corev1.Container{c("app")}}},
			warnings: []string{`already has a volume named "spiffe-aws-bridge-token"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := inj.Mutate(&tt.pod)
			var got []string
			for _, o := range res.Patch {
				b, err := json.Marshal(o)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, string(b))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("patch:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if len(res.Warnings) != len(tt.warnings) {
				t.Fatalf("warnings %q, want %d matching %q", res.Warnings, len(tt.warnings), tt.warnings)
			}
			for i, w := range tt.warnings {
				if !strings.Contains(res.Warnings[i], w) {
					t.Errorf("warning %q does not say %q", res.Warnings[i], w)
				}
			}
		})
	}
}

// TestMutateIsIdempotent applies the patch with a JSON Patch implementation (the API server's) and
// mutates the result again: the second pass must change nothing, and the first must have added the
// token volume and, to each container, exactly one mount and the two variables.
func TestMutateIsIdempotent(t *testing.T) {
	inj, err := NewInjection(InjectionOptions{Audience: "aud", ExpirationSeconds: 3600, CredentialsURI: "http://[fd00:ec2::23]/v1/credentials"})
	if err != nil {
		t.Fatal(err)
	}
	pod := corev1.Pod{Spec: corev1.PodSpec{
		Volumes:        []corev1.Volume{{Name: "data"}},
		InitContainers: []corev1.Container{{Name: "init"}},
		Containers: []corev1.Container{
			{Name: "a", Env: []corev1.EnvVar{{Name: "A", Value: "1"}}},
			{Name: "own", Env: []corev1.EnvVar{{Name: EnvFullURI, Value: "http://127.0.0.1:1/x"}}},
		},
	}}
	once := applyPatch(t, &pod, inj.Mutate(&pod).Patch)
	if res := inj.Mutate(once); len(res.Patch) != 0 {
		t.Fatalf("a second pass patched again: %+v", res.Patch)
	}
	if n := len(once.Spec.Volumes); n != 2 || once.Spec.Volumes[1].Projected.Sources[0].ServiceAccountToken.Audience != "aud" ||
		*once.Spec.Volumes[1].Projected.Sources[0].ServiceAccountToken.ExpirationSeconds != 3600 {
		t.Fatalf("volumes after the patch: %+v", once.Spec.Volumes)
	}
	for _, c := range append(once.Spec.InitContainers, once.Spec.Containers[0]) {
		env := map[string]string{}
		for _, e := range c.Env {
			env[e.Name] = e.Value
		}
		if env[EnvFullURI] != "http://[fd00:ec2::23]/v1/credentials" || env[EnvTokenFile] != MountPath+"/token" || len(c.VolumeMounts) != 1 || !c.VolumeMounts[0].ReadOnly {
			t.Errorf("container %s after the patch: env %v mounts %+v", c.Name, env, c.VolumeMounts)
		}
	}
	if own := once.Spec.Containers[1]; len(own.Env) != 1 || len(own.VolumeMounts) != 0 {
		t.Errorf("the container with its own choice was changed: %+v", own)
	}
}

func applyPatch(t *testing.T, pod *corev1.Pod, ops []PatchOp) *corev1.Pod {
	t.Helper()
	doc, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := MarshalPatch(ops)
	if err != nil {
		t.Fatal(err)
	}
	p, err := jsonpatch.DecodePatch(raw)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Apply(doc)
	if err != nil {
		t.Fatalf("applying %s: %v", raw, err)
	}
	var got corev1.Pod
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	return &got
}

func TestNewInjectionRefuses(t *testing.T) {
	for _, tt := range []struct {
		o    InjectionOptions
		want string
	}{
		{InjectionOptions{ExpirationSeconds: 599}, "599s is below the API server's minimum of 600s"},
		{InjectionOptions{CredentialsURI: "169.254.170.23/v1/credentials"}, `credentials URI "169.254.170.23/v1/credentials" is not an http:// or https:// URL`},
		{InjectionOptions{Audience: " aud"}, `audience " aud" has leading or trailing spaces`},
	} {
		if _, err := NewInjection(tt.o); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewInjection(%+v) = %v, want an error saying %q", tt.o, err, tt.want)
		}
	}
}
