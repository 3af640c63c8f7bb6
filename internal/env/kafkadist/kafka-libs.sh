#!/usr/bin/env bash
# Assembles an Apache Kafka libs/ folder (the one an unpacked distribution
# has) from Maven Central, for CI and for users without a Kafka download:
# brokers (kafka.Kafka), storage format, the perf tools and MirrorMaker 2
# all run from it with `java -cp 'libs/*'`.
#
#   scripts/kafka-libs.sh [VERSION]   (or this file; kmt embeds it)   -> prints the libs folder on stdout
#
# Destination: ${KMT_CACHE_DIR:-~/.cache/kmt}/kafka-<version>/libs. Kept
# when present (a marker file says it is complete); otherwise built in a
# temporary folder beside it and renamed into place, so a failed or
# interrupted build never leaves a half folder that looks complete.
#
# Why the log4j2 jars: no Kafka POM carries an SLF4J binding, and without one
# the broker and MirrorMaker 2 log nothing. Kafka 4.x uses slf4j-api 1.7.x,
# so the binding is log4j-slf4j-impl (not log4j-slf4j2-impl), with
# log4j-core/log4j-api at the same version.
set -euo pipefail

VERSION="${1:-${KMT_KAFKA_VERSION:-4.3.0}}"
LOG4J_VERSION="${KMT_LOG4J_VERSION:-2.24.3}"
CACHE="${KMT_CACHE_DIR:-$HOME/.cache/kmt}"
DEST="$CACHE/kafka-$VERSION"
MARK="$DEST/libs/.kmt-complete"

if [ -f "$MARK" ]; then
  echo "$DEST/libs"
  exit 0
fi
command -v mvn >/dev/null 2>&1 || { echo "kafka-libs: mvn (Apache Maven) is not installed; install it (apt-get install maven) or pass --kafka-home DIR of an unpacked Kafka" >&2; exit 3; }
command -v java >/dev/null 2>&1 || { echo "kafka-libs: java is not installed; install a JDK 17+ (apt-get install openjdk-17-jre-headless)" >&2; exit 3; }

mkdir -p "$CACHE"
work="$(mktemp -d "$CACHE/.kafka-$VERSION.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# a TERM or INT (kmt cancelled) exits through the EXIT trap, so no half-built folder stays
trap 'exit 143' TERM INT

deps=""
for a in kafka_2.13 kafka-server kafka-storage kafka-tools connect-runtime connect-mirror connect-mirror-client connect-json connect-transforms; do
  deps="$deps<dependency><groupId>org.apache.kafka</groupId><artifactId>$a</artifactId><version>$VERSION</version></dependency>"
done
for a in log4j-slf4j-impl log4j-core log4j-api; do
  deps="$deps<dependency><groupId>org.apache.logging.log4j</groupId><artifactId>$a</artifactId><version>$LOG4J_VERSION</version></dependency>"
done
# dependencyManagement pins every log4j2 jar Kafka pulls in transitively to
# the same version as the binding (mixed versions fail at class loading).
managed=""
for a in log4j-api log4j-core log4j-1.2-api log4j-slf4j-impl; do
  managed="$managed<dependency><groupId>org.apache.logging.log4j</groupId><artifactId>$a</artifactId><version>$LOG4J_VERSION</version></dependency>"
done
cat >"$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.kmt</groupId><artifactId>kafka-libs</artifactId><version>$VERSION</version>
  <packaging>pom</packaging>
  <dependencyManagement><dependencies>$managed</dependencies></dependencyManagement>
  <dependencies>$deps</dependencies>
</project>
EOF

echo "kafka-libs: assembling Apache Kafka $VERSION libs from Maven Central into $DEST/libs" >&2
if ! mvn -B -q -f "$work/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$work/libs" >"$work/mvn.log" 2>&1; then
  echo "kafka-libs: Maven could not resolve Apache Kafka $VERSION (see the log below); try another version with KMT_KAFKA_VERSION or pass --kafka-home" >&2
  tail -30 "$work/mvn.log" >&2
  exit 3
fi
for j in kafka_2.13 connect-mirror log4j-slf4j-impl; do
  ls "$work/libs/$j-"*.jar >/dev/null 2>&1 || { echo "kafka-libs: $j jar missing after Maven ran" >&2; exit 3; }
done
touch "$work/libs/.kmt-complete"

# Atomic install: the folder appears complete or not at all. A concurrent
# builder that won the race is fine: keep theirs.
mkdir -p "$DEST"
if ! mv -T "$work/libs" "$DEST/libs" 2>/dev/null; then
  [ -f "$MARK" ] || { echo "kafka-libs: could not move $work/libs to $DEST/libs" >&2; exit 3; }
fi
echo "$DEST/libs"
