#!/bin/sh
# Fail in one clear line when Java 17+ (Spark's only system prerequisite) is missing.
# custseg.spark.check_java does the same check at run time.
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
if ! command -v "$JAVA" >/dev/null 2>&1; then
  echo "custseg needs Java 17 or newer and found none (install e.g. openjdk-17-jre-headless, or set JAVA_HOME)" >&2
  exit 1
fi
VERSION=$("$JAVA" -version 2>&1 | sed -n 's/.*version "\([0-9][0-9]*\).*/\1/p' | head -n 1)
if [ -z "$VERSION" ] || [ "$VERSION" -lt 17 ]; then
  echo "custseg needs Java 17 or newer, found: $("$JAVA" -version 2>&1 | head -n 1)" >&2
  exit 1
fi
