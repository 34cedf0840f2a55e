#!/bin/sh
# Entry point of the metadata example.
#   serve.sh --port N    serve $APP_HOME/site with busybox httpd in the foreground
#   serve.sh --describe  print what the image was built with, then exit
set -e
case "$1" in
  --describe)
    echo "version=$APP_VERSION"
    echo "user=$(id -un) uid=$(id -u)"
    echo "workdir=$(pwd)"
    echo "data=$APP_DATA writable=$(test -w "$APP_DATA" && echo yes || echo no)"
    ;;
  --port)
    echo "serving $APP_HOME/site on port $2"
    exec httpd -f -p "$2" -h "$APP_HOME/site"
    ;;
  *)
    echo "usage: serve.sh --port N | --describe" >&2
    exit 2
    ;;
esac
