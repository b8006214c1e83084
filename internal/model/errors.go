package model

import (
	"errors"
	"fmt"
)

// Code classifies an error. Callers map codes to HTTP statuses, Slack replies and
// JetStream acks in one place each.
type Code string

const (
	CodeInvalid      Code = "invalid"      // bad input: never retry
	CodeUnauthorized Code = "unauthorized" // the caller may not do this
	CodeNotFound     Code = "not_found"
	CodeConflict     Code = "conflict"  // state changed underneath; retry from fresh state
	CodeTransient    Code = "transient" // worth retrying later
	CodeInternal     Code = "internal"
)

// Error is an error with a code and a message fit for a user.
type Error struct {
	Code    Code
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds a coded error.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap attaches a code to err.
func Wrap(code Code, err error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// ErrorCode returns the code of err, CodeInternal when it has none.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
