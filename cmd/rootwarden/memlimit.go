package main

import (
	"log/slog"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// memoryLimitRatio is the share of the container's (cgroup's) memory limit given to
// the Go heap as its soft limit (GOMEMLIMIT). The rest is for what the Go runtime does
// not count and the cgroup does: the binary's own pages (~32 MiB resident), the
// embedded NATS server's file reads, thread stacks. Measured (README, Performance):
// with a 192 MiB limit `run` holding 10,000 accounts and 10,000 open cases peaked at
// 163 MiB RSS and swept every minute as fast as without a limit.
const memoryLimitRatio = 0.7

// setMemoryLimit gives the Go runtime a soft memory limit from the cgroup's, so the
// garbage collector works harder before the kernel's OOM killer does. GOMEMLIMIT set
// by the operator wins; AUTOMEMLIMIT=0.5 changes the ratio, AUTOMEMLIMIT=off turns
// it off; without a cgroup limit nothing changes.
func setMemoryLimit(log *slog.Logger) {
	limit, err := memlimit.Set(memlimit.WithRatio(memoryLimitRatio), memlimit.WithProvider(memlimit.FromCgroup))
	switch {
	case err != nil:
		log.Warn("memory limit: not set from the cgroup", "err", err)
	case limit > 0 && limit < 1<<62:
		log.Info("memory limit", "gomemlimit_mib", limit>>20)
	}
}
