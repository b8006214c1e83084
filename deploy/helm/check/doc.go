// Package check decodes the manifests `helm template` renders from
// deploy/helm/rootwarden strictly into the Kubernetes and Prometheus Operator API
// types, and checks what the chart promises (restricted pods, secrets as files, the
// all-in-one singleton, the alerts). It is its own module so the main module does not
// depend on k8s.io/api.
package check
