package mirror

import (
	"fmt"
	"os"
	"strings"
)

// JavaSecurity is how MirrorMaker 2 (a Java client) reaches a secured
// cluster: TLS with a PEM CA (and a client certificate for mutual TLS),
// SASL PLAIN or SCRAM.
type JavaSecurity struct {
	TLS      bool
	CAFile   string // PEM; empty: the JVM's default trust store
	CertFile string // PEM client certificate chain (mutual TLS), with KeyFile
	KeyFile  string // PEM PKCS#8 private key
	Insecure bool   // no hostname verification

	Mechanism string // PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; empty: no SASL
	Username  string
	Password  string
}

// Enabled reports whether anything is set.
func (j JavaSecurity) Enabled() bool { return j.TLS || j.Mechanism != "" }

// envProvider is the config provider name for secrets in kmt's files.
const (
	envProvider      = "env"
	envProviderClass = "org.apache.kafka.common.config.provider.EnvVarConfigProvider"
)

// JavaProps are the Java client properties for j (without cluster prefix)
// and the environment entries they refer to. Secrets (password, private
// key) never land in the properties file, which kmt shows in the shared
// report folder: the file says ${env:NAME} and Kafka's
// EnvVarConfigProvider reads NAME from the MirrorMaker 2 process's
// environment, set by kmt for that process only. envPrefix names the
// variables (e.g. KMT_MM2_SOURCE).
func (j JavaSecurity) JavaProps(envPrefix string) (map[string]string, []string, error) {
	if !j.Enabled() {
		return nil, nil, nil
	}
	p := map[string]string{}
	var env []string
	secret := func(name, value string) string {
		env = append(env, envPrefix+"_"+name+"="+value)
		return "${" + envProvider + ":" + envPrefix + "_" + name + "}"
	}
	switch {
	case j.TLS && j.Mechanism != "":
		p["security.protocol"] = "SASL_SSL"
	case j.TLS:
		p["security.protocol"] = "SSL"
	default:
		p["security.protocol"] = "SASL_PLAINTEXT"
	}
	if j.TLS {
		if j.CAFile != "" {
			p["ssl.truststore.type"] = "PEM"
			p["ssl.truststore.location"] = j.CAFile
		}
		if (j.CertFile == "") != (j.KeyFile == "") {
			return nil, nil, fmt.Errorf("mirrormaker2 TLS: a client certificate needs both the certificate (%q) and its key (%q)", j.CertFile, j.KeyFile)
		}
		if j.CertFile != "" {
			chain, err := os.ReadFile(j.CertFile)
			if err != nil {
				return nil, nil, fmt.Errorf("mirrormaker2 TLS client certificate: %w", err)
			}
			key, err := os.ReadFile(j.KeyFile)
			if err != nil {
				return nil, nil, fmt.Errorf("mirrormaker2 TLS client key: %w", err)
			}
			p["ssl.keystore.type"] = "PEM"
			p["ssl.keystore.certificate.chain"] = secret("TLS_CERT", string(chain))
			p["ssl.keystore.key"] = secret("TLS_KEY", string(key))
		}
		if j.Insecure {
			p["ssl.endpoint.identification.algorithm"] = ""
		}
	}
	if j.Mechanism == "" {
		return p, env, nil
	}
	mech := strings.ToUpper(j.Mechanism)
	var module string
	switch mech {
	case "PLAIN":
		module = "org.apache.kafka.common.security.plain.PlainLoginModule"
	case "SCRAM-SHA-256", "SCRAM-SHA-512":
		module = "org.apache.kafka.common.security.scram.ScramLoginModule"
	default:
		return nil, nil, fmt.Errorf("mirrormaker2 SASL: mechanism %q: use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", j.Mechanism)
	}
	if j.Username == "" || j.Password == "" {
		return nil, nil, fmt.Errorf("mirrormaker2 SASL %s: a username and a password are needed", mech)
	}
	p["sasl.mechanism"] = mech
	// The whole JAAS line comes from the environment: it carries the password.
	p["sasl.jaas.config"] = secret("SASL_JAAS", fmt.Sprintf(`%s required username="%s" password="%s";`, module, jaasQuote(j.Username), jaasQuote(j.Password)))
	return p, env, nil
}

// jaasQuote escapes a value for a double-quoted JAAS option.
func jaasQuote(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}
