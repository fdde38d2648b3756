# Run with sh: prints where it lives.
printf 'inner script in %s\n' "$(cd "$(dirname "$0")" && pwd -P)"
