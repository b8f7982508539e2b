package main

import "github.com/urfave/cli/v2"

// alertsSubcommands lists the subcommands of `costpipe alerts`.
func alertsSubcommands() []*cli.Command {
	return []*cli.Command{alertsCheckCommand(), alertsRunCommand(), alertsTestCommand(), alertsBacktestCommand(), alertsSilenceCommand()}
}
