package main

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/urfave/cli/v2"

	"github.com/costpipe/costpipe/internal/secure"
	"github.com/costpipe/costpipe/warehouse"
)

// kafkaPasswordEnv holds the SASL password when no password file is given.
// There is deliberately no flag for it: a command line is visible to every
// user of the machine.
const kafkaPasswordEnv = "COSTPIPE_KAFKA_SASL_PASSWORD"

// kafkaCheckTimeout bounds the connection check of a command started with
// Kafka TLS or SASL.
const kafkaCheckTimeout = 15 * time.Second

// connCompanions are the flags that come with a connection flag: every
// command that reads --brokers talks to Kafka and takes its TLS and SASL
// flags; every one that reads --clickhouse takes ClickHouse's TLS flags.
var connCompanions = map[string][]string{
	"brokers": {"kafka-tls", "kafka-ca-file", "kafka-cert-file", "kafka-key-file", "kafka-server-name",
		"kafka-tls-insecure-skip-verify", "kafka-sasl-mechanism", "kafka-sasl-username", "kafka-sasl-password-file"},
	"clickhouse": {"clickhouse-ca-file", "clickhouse-cert-file", "clickhouse-key-file", "clickhouse-password-file"},
}

// connFlagNames returns the connection flags of the command at path:
// connUsers' and their companions.
func connFlagNames(path string) []string {
	var names []string
	for _, n := range connUsers[path] {
		names = append(names, n)
		names = append(names, connCompanions[n]...)
	}
	return names
}

// secureStringFlagSpecs are the TLS and SASL flags that take a value.
func secureStringFlagSpecs() []cli.StringFlag {
	return []cli.StringFlag{
		{Name: "kafka-ca-file", EnvVars: []string{"COSTPIPE_KAFKA_CA_FILE"}, TakesFile: true,
			Usage: "PEM `FILE` of the CAs that sign the Kafka brokers' certificates (turns TLS on; default: the system's)"},
		{Name: "kafka-cert-file", EnvVars: []string{"COSTPIPE_KAFKA_CERT_FILE"}, TakesFile: true,
			Usage: "PEM client certificate `FILE` for brokers that require mutual TLS (with --kafka-key-file)"},
		{Name: "kafka-key-file", EnvVars: []string{"COSTPIPE_KAFKA_KEY_FILE"}, TakesFile: true,
			Usage: "PEM private key `FILE` of --kafka-cert-file"},
		{Name: "kafka-server-name", EnvVars: []string{"COSTPIPE_KAFKA_SERVER_NAME"},
			Usage: "`NAME` the brokers' certificates must carry (default: the host dialed)"},
		{Name: "kafka-sasl-mechanism", EnvVars: []string{"COSTPIPE_KAFKA_SASL_MECHANISM"},
			Usage: "Kafka SASL `MECHANISM`: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (default: no SASL)"},
		{Name: "kafka-sasl-username", EnvVars: []string{"COSTPIPE_KAFKA_SASL_USERNAME"},
			Usage: "Kafka SASL `USER`"},
		{Name: "kafka-sasl-password-file", EnvVars: []string{"COSTPIPE_KAFKA_SASL_PASSWORD_FILE"}, TakesFile: true,
			Usage: "`FILE` holding the Kafka SASL password (one trailing newline ignored); or set $" + kafkaPasswordEnv},
		{Name: "clickhouse-ca-file", EnvVars: []string{"COSTPIPE_CLICKHOUSE_CA_FILE"}, TakesFile: true,
			Usage: "PEM `FILE` of the CAs that sign ClickHouse's certificate (turns TLS on, as secure=true in the DSN does; default: the system's)"},
		{Name: "clickhouse-cert-file", EnvVars: []string{"COSTPIPE_CLICKHOUSE_CERT_FILE"}, TakesFile: true,
			Usage: "PEM client certificate `FILE` for a ClickHouse that requires mutual TLS (with --clickhouse-key-file)"},
		{Name: "clickhouse-key-file", EnvVars: []string{"COSTPIPE_CLICKHOUSE_KEY_FILE"}, TakesFile: true,
			Usage: "PEM private key `FILE` of --clickhouse-cert-file"},
		{Name: "clickhouse-password-file", EnvVars: []string{"COSTPIPE_CLICKHOUSE_PASSWORD_FILE"}, TakesFile: true,
			Usage: "`FILE` holding the ClickHouse password, replacing the DSN's (one trailing newline ignored)"},
	}
}

// secureBoolFlagSpecs are the TLS flags without a value.
func secureBoolFlagSpecs() []cli.BoolFlag {
	return []cli.BoolFlag{
		{Name: "kafka-tls", EnvVars: []string{"COSTPIPE_KAFKA_TLS"},
			Usage: "connect to Kafka over TLS, verifying the brokers' certificates (--kafka-ca-file, --kafka-cert-file, --kafka-key-file or --kafka-server-name implies it; SASL does not)"},
		{Name: "kafka-tls-insecure-skip-verify", EnvVars: []string{"COSTPIPE_KAFKA_TLS_INSECURE_SKIP_VERIFY"},
			Usage: "accept any Kafka broker certificate: encrypted but NOT authenticated; tests and emergencies only"},
	}
}

// kafkaSecurity reads the Kafka TLS and SASL flags of c.
func kafkaSecurity(c *cli.Context) (secure.Kafka, error) {
	k := secure.Kafka{
		TLS: secure.TLS{
			Enabled:            c.Bool("kafka-tls"),
			CAFile:             c.String("kafka-ca-file"),
			CertFile:           c.String("kafka-cert-file"),
			KeyFile:            c.String("kafka-key-file"),
			ServerName:         c.String("kafka-server-name"),
			InsecureSkipVerify: c.Bool("kafka-tls-insecure-skip-verify"),
		},
		SASL: secure.SASL{Mechanism: c.String("kafka-sasl-mechanism"), Username: c.String("kafka-sasl-username")},
	}
	file, env := c.String("kafka-sasl-password-file"), os.Getenv(kafkaPasswordEnv)
	switch {
	case file != "" && env != "":
		return k, fmt.Errorf("both --kafka-sasl-password-file and $%s are set: give the Kafka password one way", kafkaPasswordEnv)
	case file != "":
		p, err := readSecretFile(file)
		if err != nil {
			return k, fmt.Errorf("cannot read the Kafka SASL password: %w", err)
		}
		k.SASL.Password = p
	default:
		k.SASL.Password = env
	}
	return k, k.Validate()
}

// kafkaClientOpts returns the franz-go options of c's Kafka TLS and SASL
// flags, for every Kafka client the command makes. With TLS or SASL on, it
// first connects once: an untrusted certificate, a TLS mismatch or refused
// credentials end the command with an error that says which. Other failures
// of that check (no broker reachable yet) are left to the command, which
// retries or reports them as it would without TLS.
func kafkaClientOpts(c *cli.Context) ([]kgo.Opt, error) {
	k, err := kafkaSecurity(c)
	if err != nil {
		return nil, &exitError{code: 2, msg: err.Error()}
	}
	opts, err := k.ClientOpts()
	if err != nil {
		return nil, &exitError{code: 2, msg: err.Error()}
	}
	if k.Configured() {
		if err := k.Check(c.Context, splitList(c.String("brokers")), kafkaCheckTimeout); secure.Permanent(err) {
			return nil, err
		}
	}
	return opts, nil
}

// clickhouseSecurity applies c's ClickHouse TLS and password flags to o,
// whose DSN is set: TLS with the CA file and client certificate, and the
// password from its file in place of the DSN's.
func clickhouseSecurity(c *cli.Context, o *warehouse.Options) error {
	t := secure.TLS{CAFile: c.String("clickhouse-ca-file"), CertFile: c.String("clickhouse-cert-file"), KeyFile: c.String("clickhouse-key-file")}
	tc, err := t.Config()
	if err != nil {
		return &exitError{code: 2, msg: "clickhouse TLS: " + err.Error()}
	}
	o.TLS = tc
	if file := c.String("clickhouse-password-file"); file != "" {
		p, err := readSecretFile(file)
		if err != nil {
			return &exitError{code: 2, msg: "cannot read the ClickHouse password: " + err.Error()}
		}
		if o.DSN, err = dsnWithPassword(o.DSN, p); err != nil {
			return &exitError{code: 2, msg: err.Error()}
		}
	}
	return nil
}

// dsnWithPassword returns dsn with its password replaced, keeping its user
// ("default" when it names none).
func dsnWithPassword(dsn, password string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		return "", errors.New("cannot set the ClickHouse password from --clickhouse-password-file: the DSN is not a URL such as clickhouse://user@host:9000/costpipe")
	}
	user := "default"
	if u.User != nil && u.User.Username() != "" {
		user = u.User.Username()
	}
	u.User = url.UserPassword(user, password)
	return u.String(), nil
}

// readSecretFile returns a secret file's content without one trailing
// newline (as `echo` writes it). An empty secret is an error.
func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if s == "" {
		return "", fmt.Errorf("%q is empty", path)
	}
	return s, nil
}

// appConnBoolFlag is a boolean connection flag before the command name.
type appConnBoolFlag struct {
	cli.BoolFlag
	given *givenValue
}

// Apply registers the flag and records when the command line sets it.
func (f *appConnBoolFlag) Apply(set *flag.FlagSet) error {
	if err := f.BoolFlag.Apply(set); err != nil {
		return err
	}
	for _, name := range f.Names() {
		if fl := set.Lookup(name); fl != nil {
			fl.Value = &recordingBoolValue{recordingValue{Value: fl.Value, given: f.given}}
		}
	}
	return nil
}

// recordingBoolValue is a recordingValue that, as the flag package
// requires of a boolean, may be given without a value.
type recordingBoolValue struct{ recordingValue }

// IsBoolFlag lets the flag be given as --name alone.
func (v *recordingBoolValue) IsBoolFlag() bool { return true }

// cmdConnBoolFlag is a boolean connection flag after the command name; see
// cmdConnFlag.
type cmdConnBoolFlag struct {
	cli.BoolFlag
	before *givenValue
}

// Apply registers the flag with the value given before the command, if
// any, as its default.
func (f *cmdConnBoolFlag) Apply(set *flag.FlagSet) error {
	if !f.before.set {
		return f.BoolFlag.Apply(set)
	}
	v, err := strconv.ParseBool(f.before.v)
	if err != nil {
		return fmt.Errorf("invalid value %q for flag --%s: %w", f.before.v, f.Name, err)
	}
	given := f.BoolFlag
	given.Value, given.EnvVars, given.FilePath = v, nil, ""
	return given.Apply(set)
}
