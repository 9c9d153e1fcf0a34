package main

import (
	"io"

	"github.com/spf13/cobra"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/credentialprocess"
)

// extraCommands are the one-shot commands: credential-process (aws_signing_helper compatible),
// credentials and rolesanywhere (spiffe-aws-assume-role compatible) and check.
func extraCommands(stdout, stderr io.Writer) []*cobra.Command {
	return []*cobra.Command{
		credentialprocess.NewCommand("credential-process", "spiffe-aws-bridge credential-process", stdout, stderr),
		newRolesAnywhereCommand(stdout, stderr),
		newCredentialsCommand(stdout, stderr),
		newCheckCommand(stdout, stderr),
	}
}
