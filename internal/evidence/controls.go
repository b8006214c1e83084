package evidence

// Control is one control or benchmark recommendation the pack is evidence for.
// MappedBy says whose mapping it is: "aws" when AWS's Security Hub control page
// lists the requirement as related to the control rootwarden evidences; "rootwarden"
// when the mapping is ours (from the benchmark's text, CIS numbering as Prowler's and
// Tenable's audit files carry it). Sources are in docs/evidence.md.
type Control struct {
	Framework string `json:"framework"`
	ID        string `json:"id"`
	Title     string `json:"title"`
	MappedBy  string `json:"mapped_by"` // aws, rootwarden
	// Coverage: "full" — the pack is evidence for the control; "partial" — for the
	// access-key part of it (other root credential types come with later rows).
	Coverage string `json:"coverage"`
	Source   string `json:"source"`
}

const (
	srcSH      = "https://docs.aws.amazon.com/securityhub/latest/userguide/iam-controls.html"
	srcCIS4    = "prowler-cloud/prowler prowler/compliance/aws/cis_4.0_aws.json"
	srcCIS7    = "prowler-cloud/prowler prowler/compliance/aws/cis_7.0_aws.json; Tenable CIS AWS Foundations v7.0.0 L1 audit items 2.4, 2.7"
	srcCIS3_17 = "Tenable CIS AWS Foundations v3.0.0 audit item 1.7"
	srcPCI4    = "PCI DSS v4.0 requirement 8 (identify users and authenticate access); rootwarden's reading"
)

// Controls is the control map of schema version 1.
func Controls() []Control {
	return []Control{
		{"AWS Security Hub", "IAM.4", "IAM root user access key should not exist", "aws", "full", srcSH},
		{"AWS Security Hub", "IAM.6", "Hardware MFA should be enabled for the root user (PASSED when root user credentials are not present)", "aws", "partial", srcSH},
		{"AWS Security Hub", "IAM.9", "MFA should be enabled for the root user (PASSED when root user credentials are not present)", "aws", "partial", srcSH},
		{"CIS AWS Foundations v3.0.0", "1.4", "Ensure no 'root' user account access key exists", "aws", "full", srcSH + " (IAM.4 related requirements)"},
		{"CIS AWS Foundations v3.0.0", "1.5", "Ensure MFA is enabled for the 'root' user account", "aws", "partial", srcSH + " (IAM.9 related requirements)"},
		{"CIS AWS Foundations v3.0.0", "1.6", "Ensure hardware MFA is enabled for the 'root' user account", "aws", "partial", srcSH + " (IAM.6 related requirements)"},
		{"CIS AWS Foundations v3.0.0", "1.7", "Eliminate use of the 'root' user for administrative and daily tasks", "rootwarden", "partial", srcCIS3_17},
		{"CIS AWS Foundations v4.0.1", "1.4", "Ensure no 'root' user account access key exists", "rootwarden", "full", srcCIS4},
		{"CIS AWS Foundations v4.0.1", "1.5", "Ensure MFA is enabled for the 'root' user account", "rootwarden", "partial", srcCIS4},
		{"CIS AWS Foundations v4.0.1", "1.6", "Ensure hardware MFA is enabled for the 'root' user account", "rootwarden", "partial", srcCIS4},
		{"CIS AWS Foundations v4.0.1", "1.7", "Eliminate use of the 'root' user for administrative and daily tasks", "rootwarden", "partial", srcCIS4},
		{"CIS AWS Foundations v5.0.0", "1.3", "Ensure no 'root' user account access key exists", "aws", "full", srcSH + " (IAM.4 related requirements)"},
		{"CIS AWS Foundations v5.0.0", "1.4", "Ensure MFA is enabled for the 'root' user account", "aws", "partial", srcSH + " (IAM.9 related requirements)"},
		{"CIS AWS Foundations v5.0.0", "1.5", "Ensure hardware MFA is enabled for the 'root' user account", "aws", "partial", srcSH + " (IAM.6 related requirements)"},
		{"CIS AWS Foundations v7.0.0", "2.1.1", "Ensure centralized root access in AWS Organizations", "rootwarden", "partial", srcCIS7},
		{"CIS AWS Foundations v7.0.0", "2.4", "Ensure no 'root' user account access key exists", "rootwarden", "full", srcCIS7},
		{"CIS AWS Foundations v7.0.0", "2.7", "Eliminate use of the 'root' user for administrative and daily tasks", "rootwarden", "partial", srcCIS7},
		{"NIST SP 800-53 Rev. 5", "AC-2(1)", "Account management: automated system account management", "aws", "full", srcSH + " (IAM.4 related requirements)"},
		{"NIST SP 800-53 Rev. 5", "AC-6", "Least privilege", "aws", "partial", srcSH + " (IAM.4 related requirements)"},
		{"PCI DSS v4.0", "8", "Identify users and authenticate access to system components (no shared, unmanaged root credentials)", "rootwarden", "partial", srcPCI4},
	}
}
