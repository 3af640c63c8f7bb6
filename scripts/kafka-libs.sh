#!/usr/bin/env bash
# Assembles Apache Kafka's libs/ from Maven Central into the kmt cache and
# prints its path. The recipe lives beside the Go code that also runs it when
# the folder is missing (internal/env/kafkadist embeds it), so there is one copy.
exec bash "$(dirname "$0")/../internal/env/kafkadist/kafka-libs.sh" "$@"
