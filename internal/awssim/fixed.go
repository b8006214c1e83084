package awssim

// SetAdminCredentials makes akid and secret the admin credentials of the account, so
// that a restarted simulator (`rootwarden sim --seed`) keeps the credentials a shell
// has already sourced. akid should look like an access key id (AKIA + 16 characters).
func (s *Sim) SetAdminCredentials(accountID, akid, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	acc := s.mustAccount(accountID)
	if acc.admin != nil {
		delete(s.creds, acc.admin.id)
	}
	c := &cred{id: akid, secret: secret, kind: kindAdmin, acct: acc, userID: "AIDA" + akid[min(4, len(akid)):]}
	acc.admin = c
	s.creds[c.id] = c
}
