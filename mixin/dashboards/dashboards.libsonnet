(import 'overview.libsonnet') +
(import 'origin.libsonnet') +
(import 'fleet.libsonnet')
