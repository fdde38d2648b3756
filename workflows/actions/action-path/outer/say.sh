#!/bin/sh
# Says which script this is and where it lives.
echo "$1 script in $(cd "$(dirname "$0")" && pwd -P)"
