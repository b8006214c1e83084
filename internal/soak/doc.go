// Package soak holds the steady-state soak benchmark (soak_test.go): the detector and
// the remediator over an embedded NATS against the AWS simulator, sweep after sweep
// of an unchanged organization. It has no code of its own; it runs only when
// ROOTWARDEN_SOAK=1.
package soak
