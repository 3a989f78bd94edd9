# bash completion for wasmxds and wasmxdsctl (installed under both names
# in bash-completion's completions directory by `make install`).

_wasmxds() {
  local cur prev
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=${COMP_WORDS[COMP_CWORD-1]}
  case $prev in
  --store|--module-cache|--pull-secrets|--dump-dir)
    COMPREPLY=($(compgen -f -- "$cur")); return ;;
  --tls-cert|--tls-key|--tls-client-ca|--admin-token-file|--module-token-secret|--module-ca-file|--etcd-ca|--etcd-cert|--etcd-key|--etcd-password-file)
    COMPREPLY=($(compgen -f -- "$cur")); return ;;
  --log-level)
    COMPREPLY=($(compgen -W "error warn info debug" -- "$cur")); return ;;
  --log-format)
    COMPREPLY=($(compgen -W "text json" -- "$cur")); return ;;
  esac
  if [ "$COMP_CWORD" -eq 1 ] && [[ $cur != -* ]]; then
    COMPREPLY=($(compgen -W "serve validate render" -- "$cur"))
    return
  fi
  COMPREPLY=($(compgen -W "--listen --store --module-cluster
    --ecds-fetch-timeout --inline-wasm --istio-root-namespace --admin-listen
    --modules-listen --admin-token-file --admin-header-timeout
    --admin-max-conns-per-ip --tls-cert --tls-key --tls-client-ca
    --max-streams --keepalive-ms --drain-ms --debounce-ms
    --max-removal-share --module-cache --module-cache-max-bytes
    --pull-secrets --module-base-url --module-token-secret
    --module-http-direct --insecure-registries --module-ca-file
    --module-pull-workers --module-fetch-timeout --module-retry-max
    --module-always-interval --module-max-bytes --module-allow-link-local
    --no-module-fetch --etcd-user --etcd-password-file --etcd-ca --etcd-cert
    --etcd-key --etcd-debounce --log-level --log-format --node-id --cluster
    --metadata --dump-dir --fetch-modules --help --version" -- "$cur"))
}

_wasmxdsctl() {
  local cur prev i cmd=
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=${COMP_WORDS[COMP_CWORD-1]}
  for ((i = 1; i < COMP_CWORD; i++)); do
    case ${COMP_WORDS[i]} in
    apply|get|delete|list|validate|render|status) cmd=${COMP_WORDS[i]}; break ;;
    esac
  done
  case $prev in
  -f|--tls-ca|--tls-cert|--tls-key|--etcd-ca|--etcd-cert|--etcd-key|--etcd-password-file)
    COMPREPLY=($(compgen -f -- "$cur")); return ;;
  -o|--output)
    COMPREPLY=($(compgen -W "wide json yaml" -- "$cur")); return ;;
  esac
  case $cmd in
  "")
    if [[ $cur == -* ]]; then
      COMPREPLY=($(compgen -W "--store --etcd-user --etcd-password-file
        --etcd-ca --etcd-cert --etcd-key --help --version" -- "$cur"))
    else
      COMPREPLY=($(compgen -W "apply get delete list validate render status" -- "$cur"))
    fi ;;
  apply) COMPREPLY=($(compgen -W "-f --dry-run" -- "$cur")) ;;
  get) COMPREPLY=($(compgen -W "--raw" -- "$cur")) ;;
  delete) COMPREPLY=($(compgen -W "--revision" -- "$cur")) ;;
  list) COMPREPLY=($(compgen -W "WasmExtension ListenerTemplate" -- "$cur")) ;;
  status)
    COMPREPLY=($(compgen -W "--server --output -o --tls-ca --tls-cert
      --tls-key --tls-server-name --timeout-ms --help" -- "$cur")) ;;
  esac
}

complete -F _wasmxds wasmxds
complete -F _wasmxdsctl wasmxdsctl
