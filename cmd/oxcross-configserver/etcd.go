package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	promconfig "github.com/prometheus/common/config"

	"github.com/oxcross/oxcross/configserver"
)

// etcdFlags are the --registry.etcd.* flags.
type etcdFlags struct {
	endpoints                 *[]string
	prefix                    *string
	certFile, keyFile, caFile *string
	serverName                *string
	username, passwordFile    *string
}

func addEtcdFlags(app *kingpin.Application) *etcdFlags {
	return &etcdFlags{
		endpoints: app.Flag("registry.etcd.endpoints", "Keep the leaf registry in etcd at these client URLs (comma-separated, or repeat the flag), shared by every configserver replica: one key per leaf on a lease whose TTL is its expiry. While etcd is unreachable, /sd/leaves and the views serve the last registry, registrations get 503 and /-/ready says not ready. Without it the registry lives in this process's memory.").
			PlaceHolder("URL").Strings(),
		prefix: app.Flag("registry.etcd.prefix", "Key prefix of the leaves in etcd; replicas that share a registry use the same one. Anyone who may write keys under it can register leaves (see docs/security.md).").
			Default(configserver.DefaultEtcdPrefix).String(),
		certFile: app.Flag("registry.etcd.cert-file", "Client certificate (PEM) to present to etcd.").PlaceHolder("FILE").String(),
		keyFile:  app.Flag("registry.etcd.key-file", "Key (PEM) of --registry.etcd.cert-file.").PlaceHolder("FILE").String(),
		caFile:   app.Flag("registry.etcd.ca-file", "CA certificates (PEM) that etcd's server certificate must chain to; with https:// endpoints and no CA file, the system's roots.").PlaceHolder("FILE").String(),
		serverName: app.Flag("registry.etcd.server-name", "Name etcd's server certificate must have, when it is not the endpoints' host.").
			PlaceHolder("NAME").String(),
		username:     app.Flag("registry.etcd.username", "etcd user to authenticate as (etcd's auth enabled); needs --registry.etcd.password-file.").PlaceHolder("USER").String(),
		passwordFile: app.Flag("registry.etcd.password-file", "File holding the password of --registry.etcd.username (trailing newline ignored).").PlaceHolder("FILE").String(),
	}
}

// store returns the etcd store the flags describe, nil without
// --registry.etcd.endpoints.
func (f *etcdFlags) store(reg prometheus.Registerer, logger *slog.Logger) (*configserver.EtcdStore, error) {
	var endpoints []string
	for _, e := range *f.endpoints {
		for part := range strings.SplitSeq(e, ",") {
			if part = strings.TrimSpace(part); part != "" {
				endpoints = append(endpoints, part)
			}
		}
	}
	if len(endpoints) == 0 {
		if *f.certFile != "" || *f.caFile != "" || *f.username != "" {
			return nil, fmt.Errorf("--registry.etcd.* TLS or auth flags without --registry.etcd.endpoints")
		}
		return nil, nil
	}
	o := configserver.EtcdOptions{Endpoints: endpoints, Prefix: *f.prefix, Logger: logger}
	if !strings.HasSuffix(o.Prefix, "/") {
		return nil, fmt.Errorf("--registry.etcd.prefix %q: want a prefix ending in /", o.Prefix)
	}
	if (*f.certFile == "") != (*f.keyFile == "") {
		return nil, fmt.Errorf("--registry.etcd.cert-file and --registry.etcd.key-file go together")
	}
	tlsWanted := *f.certFile != "" || *f.caFile != "" || *f.serverName != ""
	for _, e := range endpoints {
		if strings.HasPrefix(e, "https://") {
			tlsWanted = true
		}
	}
	if tlsWanted {
		tc, err := promconfig.NewTLSConfig(&promconfig.TLSConfig{CAFile: *f.caFile, CertFile: *f.certFile, KeyFile: *f.keyFile, ServerName: *f.serverName})
		if err != nil {
			return nil, fmt.Errorf("--registry.etcd TLS: %w", err)
		}
		o.TLS = tc
	}
	if (*f.username == "") != (*f.passwordFile == "") {
		return nil, fmt.Errorf("--registry.etcd.username and --registry.etcd.password-file go together")
	}
	if *f.username != "" {
		b, err := os.ReadFile(*f.passwordFile)
		if err != nil {
			return nil, fmt.Errorf("--registry.etcd.password-file: %w", err)
		}
		o.Username, o.Password = *f.username, strings.TrimRight(string(b), "\r\n")
	}
	return configserver.NewEtcdStore(o, reg)
}
