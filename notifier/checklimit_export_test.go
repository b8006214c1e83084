package notifier

// CheckLimitSizes is how many account slots and user buckets the check limits hold.
func (n *Notifier) CheckLimitSizes() (accounts, users int) { return n.checkLimitSizes() }
