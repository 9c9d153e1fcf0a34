package main

import (
	"io"

	"github.com/spf13/cobra"
)

// extraCommands are the one-shot commands: credential-process (aws_signing_helper compatible),
// credentials and rolesanywhere (spiffe-aws-assume-role compatible) and check.
func extraCommands(stdout, stderr io.Writer) []*cobra.Command {
	return []*cobra.Command{
		newCredentialProcessCommand(stdout, stderr),
		newRolesAnywhereCommand(stdout, stderr),
		newCredentialsCommand(stdout, stderr),
		newCheckCommand(stdout, stderr),
	}
}
