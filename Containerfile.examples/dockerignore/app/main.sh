#!/bin/sh
. /ctx/app/lib.sh
greet "from the dockerignore example"
