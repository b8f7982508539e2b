package main

import (
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/urfave/cli/v2"
)

// probeCommand is a container healthcheck for images without a shell or
// curl (the distroless image of deploy/Dockerfile).
func probeCommand() *cli.Command {
	return &cli.Command{
		Name:      "probe",
		Usage:     "GET a health URL; exit 0 on a 2xx answer (a container healthcheck)",
		ArgsUsage: "URL",
		Description: `Sends one GET to URL, e.g. http://127.0.0.1:9464/readyz, and exits 0 when the
answer is 2xx, 1 otherwise, printing the status and the first line of the body.
For healthchecks in images without curl:
  healthcheck: { test: ["CMD", "/costpipe", "probe", "http://127.0.0.1:9464/readyz"] }`,
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "timeout", Value: 3 * time.Second, Usage: "give up after `DURATION`"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return &exitError{code: 2, msg: "probe takes one URL argument"}
			}
			cl := &http.Client{Timeout: c.Duration("timeout")}
			resp, err := cl.Get(c.Args().First())
			if err != nil {
				return &exitError{code: 1, msg: fmt.Sprintf("probe: %v", err)}
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			if resp.StatusCode/100 != 2 {
				return &exitError{code: 1, msg: fmt.Sprintf("probe: %s: %s", resp.Status, firstLine(body))}
			}
			fmt.Fprintf(c.App.Writer, "%s: %s\n", resp.Status, firstLine(body))
			return nil
		},
	}
}

// firstLine returns b up to its first newline.
func firstLine(b []byte) string {
	for i, c := range b {
		if c == '\n' {
			return string(b[:i])
		}
	}
	return string(b)
}
