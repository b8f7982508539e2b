package main

import (
	"context"
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
			&cli.DurationFlag{Name: "timeout", Value: 3 * time.Second, Usage: "give up after `DURATION` (more than 0), the answer's body read included"},
		},
		Action: func(c *cli.Context) error {
			// `probe URL --timeout 1s` as healthchecks are often written:
			// flags after the URL count as before it.
			fl, args, helped, uerr := lateArgs(c)
			if uerr != nil {
				return uerr
			}
			if helped {
				return nil
			}
			if len(args) != 1 {
				return &exitError{code: 2, msg: fmt.Sprintf("probe takes one URL argument, got %d", len(args))}
			}
			timeout, err := time.ParseDuration(fl.String("timeout"))
			if err != nil || timeout <= 0 {
				// 0 would wait forever on a server that accepts and never
				// answers: the one case a healthcheck must catch.
				return &exitError{code: 2, msg: fmt.Sprintf("invalid --timeout %s: want a positive duration", fl.String("timeout"))}
			}
			ctx, cancel := context.WithTimeout(c.Context, timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, args[0], nil)
			if err != nil {
				return &exitError{code: 2, msg: fmt.Sprintf("probe: %v", err)}
			}
			resp, err := http.DefaultClient.Do(req)
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
