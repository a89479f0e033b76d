// Package discovery is who finds whom in Oxcross. On the leaf's side: the
// Follower that keeps the leaf's config current from the configserver
// (Remote) or a local file, the on-disk cache it starts from when the
// configserver cannot be reached, and the Registrar that sends the leaf's
// heartbeats, with their oxcross_leaf_config_* metrics. Between leaf and
// configserver: the Registration wire type. For Prometheus: the http_sd
// target groups of leaves and origins, which the configserver serves.
package discovery
