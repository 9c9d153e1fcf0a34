package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Keys of the CA Secret the self-signed bootstrap shares between replicas.
const (
	CASecretCertKey = "ca.crt"
	CASecretKeyKey  = "ca.key"
)

// Bootstrap is the self-signed mode's use of the Kubernetes API: it keeps one CA for every replica in a
// Secret the chart creates empty, and the CA in the named MutatingWebhookConfiguration's caBundle. It
// needs get and update on that Secret and get and patch on that MutatingWebhookConfiguration, nothing
// more (the chart's RBAC grants exactly those, by resourceNames).
type Bootstrap struct {
	// Client talks to the API server.
	Client kubernetes.Interface
	// Namespace and SecretName name the CA Secret.
	Namespace, SecretName string
	// WebhookConfig names the MutatingWebhookConfiguration whose every webhook gets the CA.
	WebhookConfig string
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// CA returns the shared CA: the Secret's when it holds a valid one, else a new one written into the
// Secret. Two replicas starting at once both end up with the one written first (the second write
// conflicts, and the second replica reads the first's).
func (b *Bootstrap) CA(ctx context.Context) (*CA, error) {
	now := time.Now
	if b.Now != nil {
		now = b.Now
	}
	secrets := b.Client.CoreV1().Secrets(b.Namespace)
	for attempt := 0; ; attempt++ {
		s, err := secrets.Get(ctx, b.SecretName, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("webhook: reading the CA Secret %s/%s (the chart creates it empty): %w", b.Namespace, b.SecretName, err)
		}
		if len(s.Data[CASecretCertKey]) > 0 || len(s.Data[CASecretKeyKey]) > 0 {
			ca, err := ParseCA(s.Data[CASecretCertKey], s.Data[CASecretKeyKey])
			if err == nil && now().Before(ca.Cert.NotAfter.Add(-ServingLifetime)) {
				return ca, nil
			}
			// An unusable or nearly expired CA is replaced (below), as an empty Secret is filled.
		}
		ca, err := NewCA(now())
		if err != nil {
			return nil, err
		}
		if s.Data == nil {
			s.Data = map[string][]byte{}
		}
		s.Data[CASecretCertKey], s.Data[CASecretKeyKey] = ca.CertPEM, ca.KeyPEM
		// Update carries the resourceVersion read above: it fails with a conflict if another replica
		// wrote first, and then this one reads and uses that CA.
		if _, err := secrets.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			if apierrors.IsConflict(err) && attempt < 3 {
				continue
			}
			return nil, fmt.Errorf("webhook: writing the CA into Secret %s/%s: %w", b.Namespace, b.SecretName, err)
		}
		return ca, nil
	}
}

// EnsureCABundle sets caPEM as the caBundle of every webhook of the MutatingWebhookConfiguration that
// does not have it yet, and reports whether it changed anything. Each replaced entry is guarded by a test
// of the webhook's name at that index, so a concurrent edit of the list fails the patch instead of
// landing on the wrong webhook.
func (b *Bootstrap) EnsureCABundle(ctx context.Context, caPEM []byte) (bool, error) {
	mwcs := b.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	cfg, err := mwcs.Get(ctx, b.WebhookConfig, metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("webhook: reading MutatingWebhookConfiguration %s: %w", b.WebhookConfig, err)
	}
	var ops []map[string]any
	for i, wh := range cfg.Webhooks {
		if bytes.Equal(wh.ClientConfig.CABundle, caPEM) {
			continue
		}
		ops = append(ops,
			map[string]any{"op": "test", "path": fmt.Sprintf("/webhooks/%d/name", i), "value": wh.Name},
			map[string]any{"op": "add", "path": fmt.Sprintf("/webhooks/%d/clientConfig/caBundle", i), "value": caPEM})
	}
	if len(ops) == 0 {
		return false, nil
	}
	patch, err := json.Marshal(ops)
	if err != nil {
		return false, fmt.Errorf("webhook: encoding the caBundle patch: %w", err)
	}
	if _, err := mwcs.Patch(ctx, b.WebhookConfig, types.JSONPatchType, patch, metav1.PatchOptions{}); err != nil {
		return false, fmt.Errorf("webhook: setting the caBundle of MutatingWebhookConfiguration %s: %w", b.WebhookConfig, err)
	}
	return true, nil
}
