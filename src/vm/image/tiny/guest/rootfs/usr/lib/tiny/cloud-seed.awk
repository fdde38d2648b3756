# Reads a NoCloud meta-data file, then a user-data file (the subset of cloud-config that forgevm
# writes), and writes one file per fact into the folder given as -v out=DIR:
#   instance-id, hostname (user-data `hostname` wins over meta-data `local-hostname`),
#   authorized_keys (from ssh_authorized_keys), ssh_host_ed25519_key (ssh_keys.ed25519_private).
# Unknown keys are ignored. Only block style is understood, which is what forgevm emits.

function trim(v) {
  sub(/^[ \t]+/, "", v)
  sub(/[ \t]+$/, "", v)
  return v
}
function unquote(v) {
  v = trim(v)
  if (v ~ /^".*"$/ || v ~ /^'.*'$/) v = substr(v, 2, length(v) - 2)
  return v
}
function indentOf(line) {
  match(line, /^ */)
  return RLENGTH
}

FNR == 1 { top = ""; inBlock = 0 }
{ sub(/\r$/, "") }

# Lines of a literal block scalar (`key: |`) are those indented deeper than its key.
inBlock {
  if ($0 ~ /^[ \t]*$/) next
  if (indentOf($0) > blockKeyIndent) {
    if (blockIndent < 0) blockIndent = indentOf($0)
    print substr($0, blockIndent + 1) > blockFile
    next
  }
  inBlock = 0
  close(blockFile)
}

/^[ \t]*#/ || /^[ \t]*$/ { next }

/^[A-Za-z0-9_-]+:/ {
  top = $0
  sub(/:.*/, "", top)
  value = $0
  sub(/^[^:]*:/, "", value)
  value = unquote(value)
  if (top == "instance-id") print value > (out "/instance-id")
  else if (top == "local-hostname" && hostname == "") hostname = value
  else if (top == "hostname") hostname = value
  next
}

top == "ssh_authorized_keys" && /^[ \t]*-[ \t]/ {
  key = $0
  sub(/^[ \t]*-[ \t]+/, "", key)
  print unquote(key) > (out "/authorized_keys")
  next
}

top == "ssh_keys" && /^[ \t]+ed25519_private:[ \t]*\|[-+]?[ \t]*$/ {
  inBlock = 1
  blockKeyIndent = indentOf($0)
  blockIndent = -1
  blockFile = out "/ssh_host_ed25519_key"
  next
}

END {
  if (hostname != "") print hostname > (out "/hostname")
}
