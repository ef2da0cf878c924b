# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_akm_global_optspecs
    string join \n config= json h/help V/version
end

function __fish_akm_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_akm_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_akm_using_subcommand
    set -l cmd (__fish_akm_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c akm -n "__fish_akm_needs_command" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_needs_command" -l json -d 'Print JSON instead of text: results, and errors as {"error": {"message", "reason", "exit_code"}} on stdout (the plain message still goes to stderr)'
complete -c akm -n "__fish_akm_needs_command" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_needs_command" -s V -l version -d 'Print version'
complete -c akm -n "__fish_akm_needs_command" -f -a "serve" -d 'Run the KMIP server (initializing first if the config allows and nothing exists yet)'
complete -c akm -n "__fish_akm_needs_command" -f -a "init" -d 'Create the data directory, the KEK and a development PKI'
complete -c akm -n "__fish_akm_needs_command" -f -a "cert" -d 'Client certificates from the development CA'
complete -c akm -n "__fish_akm_needs_command" -f -a "key" -d 'Manage keys on a running server (a KMIP client over mutual TLS)'
complete -c akm -n "__fish_akm_needs_command" -f -a "audit" -d 'Verify and export audit records; print the audit public key'
complete -c akm -n "__fish_akm_needs_command" -f -a "user" -d 'Manage user records on a running server (administrators only)'
complete -c akm -n "__fish_akm_needs_command" -f -a "group" -d 'Manage group records on a running server (administrators only)'
complete -c akm -n "__fish_akm_needs_command" -f -a "tls" -d 'The running server\'s TLS configuration (administrators only)'
complete -c akm -n "__fish_akm_needs_command" -f -a "reload" -d 'Make the running server re-read its configuration file, as SIGHUP does: TLS files, the access section, log level (administrators only). A refused file is printed; exit 2'
complete -c akm -n "__fish_akm_needs_command" -f -a "kek" -d 'KEK custody: seal a stopped node\'s KEK (`akm kek seal`), or show the running server\'s seal status (`akm kek status`, administrators only)'
complete -c akm -n "__fish_akm_needs_command" -f -a "unseal" -d 'Offer a custodian share or the passphrase to a sealed server (administrators only)'
complete -c akm -n "__fish_akm_needs_command" -f -a "authorize" -d 'Dual control: as a second administrator, let another user perform a guarded operation for a few minutes (administrators only)'
complete -c akm -n "__fish_akm_needs_command" -f -a "approve" -d 'Dual control: as a second administrator, approve a refused request by its id'
complete -c akm -n "__fish_akm_needs_command" -f -a "backup" -d 'Take an online backup of the running server\'s key database into its backup directory (administrators only)'
complete -c akm -n "__fish_akm_needs_command" -f -a "restore" -d 'Restore a backup into an empty, stopped node (verifies the whole file first)'
complete -c akm -n "__fish_akm_needs_command" -f -a "conformance" -d 'Replay OASIS KMIP XML test cases against a running server (a KMIP client over mTLS)'
complete -c akm -n "__fish_akm_needs_command" -f -a "bench" -d 'A KMIP load tool for any KMIP server: ops/s, latency percentiles, server CPU and memory'
complete -c akm -n "__fish_akm_needs_command" -f -a "report" -d 'Reports for auditors: `akm report keys [--csv]`, the key inventory (administrators only)'
complete -c akm -n "__fish_akm_needs_command" -f -a "store" -d 'The key store\'s schema: `akm store migrate [--check]` (no KEK, no server needed)'
complete -c akm -n "__fish_akm_needs_command" -f -a "mirror" -d 'Mirroring to failover peers'
complete -c akm -n "__fish_akm_needs_command" -f -a "generate-docs" -d 'Write the man pages and shell completions generated from this command line into DIR (for packagers; hidden from help)'
complete -c akm -n "__fish_akm_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c akm -n "__fish_akm_using_subcommand serve" -l listen -d 'Listen on this address instead of the configured one' -r
complete -c akm -n "__fish_akm_using_subcommand serve" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand serve" -l json -d 'Print JSON instead of text: results, and errors as {"error": {"message", "reason", "exit_code"}} on stdout (the plain message still goes to stderr)'
complete -c akm -n "__fish_akm_using_subcommand serve" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand init" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand init" -l json -d 'Print JSON instead of text: results, and errors as {"error": {"message", "reason", "exit_code"}} on stdout (the plain message still goes to stderr)'
complete -c akm -n "__fish_akm_using_subcommand init" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand cert; and not __fish_seen_subcommand_from issue peer sign list revoke help" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand cert; and not __fish_seen_subcommand_from issue peer sign list revoke help" -l json -d 'Print JSON instead of text: results, and errors as {"error": {"message", "reason", "exit_code"}} on stdout (the plain message still goes to stderr)'
complete -c akm -n "__fish_akm_using_subcommand cert; and not __fish_seen_subcommand_from issue peer sign list revoke help" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand cert; and not __fish_seen_subcommand_from issue peer sign list revoke help" -f -a "issue" -d 'Issue a client certificate: CN is the user, each OU a group'
complete -c akm -n "__fish_akm_using_subcommand cert; and not __fish_seen_subcommand_from issue peer sign list revoke help" -f -a "peer" -d 'Issue a mirror peer certificate (`mirror.crt`, `mirror.key`) and print its fingerprint'
complete -c akm -n "__fish_akm_using_subcommand cert; and not __fish_seen_subcommand_from issue peer sign list revoke help" -f -a "sign" -d 'Sign a certificate signing request (PEM) with the akm CA as a client certificate: its CN is the user, each OU a group; recorded for `akm cert list` and expiry warnings'
complete -c akm -n "__fish_akm_using_subcommand cert; and not __fish_seen_subcommand_from issue peer sign list revoke help" -f -a "list" -d 'List the client certificates the akm CA issued: serial, subject, expiry, revoked'
complete -c akm -n "__fish_akm_using_subcommand cert; and not __fish_seen_subcommand_from issue peer sign list revoke help" -f -a "revoke" -d 'Revoke client certificates: add them to the CRL file, re-signed with a fresh validity (with nothing to add, just re-sign it); then `akm tls reload` or SIGHUP'
complete -c akm -n "__fish_akm_using_subcommand cert; and not __fish_seen_subcommand_from issue peer sign list revoke help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c akm -n "__fish_akm_using_subcommand cert; and __fish_seen_subcommand_from issue" -l cn -d 'The user name (certificate CN)' -r
complete -c akm -n "__fish_akm_using_subcommand cert; and __fish_seen_subcommand_from issue" -l ou -d 'A group (certificate OU); repeat for several' -r
complete -c akm -n "__fish_akm_using_subcommand cert; and __fish_seen_subcommand_from issue" -l out -d 'Directory to write `<cn>.crt` and `<cn>.key` into' -r -F
complete -c akm -n "__fish_akm_using_subcommand cert; and __fish_seen_subcommand_from issue" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand cert; and __fish_seen_subcommand_from issue" -l json -d 'Print JSON instead of text: results, and errors as {"error": {"message", "reason", "exit_code"}} on stdout (the plain message still goes to stderr)'
complete -c akm -n "__fish_akm_using_subcommand cert; and __fish_seen_subcommand_from issue" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand cert; and __fish_seen_subcommand_from peer" -l name -d 'A host name or IP address of this node (SAN; the first is the CN); repeat for more' -r
complete -c akm -n "__fish_akm_using_subcommand cert; and __fish_seen_subcommand_from peer" -l out -d 'Directory to write `mirror.crt` and `mirror.key` into' -r -F
complete -c akm -n "__fish_akm_using_subcommand cert; and __fish_seen_subcommand_from peer" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand cert; and __fish_seen_subcommand_from peer" -l json -d 'Print JSON instead of text: results, and errors as {"error": {"message", "reason", "exit_code"}} on stdout (the plain message still goes to stderr)'
complete -c akm -n "__fish_akm_using_subcommand cert; and __fish_seen_subcommand_from peer" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand cert; and __fish_seen_subcommand_from sign" -l csr -d 'The CSR file (PEM "CERTIFICATE REQUEST"); its signature must verify' -r -F
complete -c akm -n "__fish_akm_using_subcommand cert; and __fish_seen_subcommand_from sign" -l days -d 'Days the certificate is valid (1 to 3650)' -r
complete -c akm -n "__fish_akm_using_subcommand cert; and __fish_seen_subcommand_from sign" -l out -d 'Write the certificate here (default: print it)' -r -F
complete -c akm -n "__fish_akm_using_subcommand cert; and __fish_seen_subcommand_from sign" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand cert; and __fish_seen_subcommand_from sign" -l admin -d 'Allow the administrators group (access.admin_group) among the OUs'
complete -c akm -n "__fish_akm_using_subcommand cert; and __fish_seen_subcommand_from sign" -l json -d 'Print JSON instead of text: results, and errors as {"error": {"message", "reason", "exit_code"}} on stdout (the plain message still goes to stderr)'
complete -c akm -n "__fish_akm_using_subcommand cert; and __fish_seen_subcommand_from sign" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand cert; and __fish_seen_subcommand_from list" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand cert; and __fish_seen_subcommand_from list" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand cert; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand cert; and __fish_seen_subcommand_from revoke" -l cert -d 'A certificate file (PEM) to revoke; repeat for several' -r -F
complete -c akm -n "__fish_akm_using_subcommand cert; and __fish_seen_subcommand_from revoke" -l serial -d 'A serial number (hex) to revoke; repeat for several' -r
complete -c akm -n "__fish_akm_using_subcommand cert; and __fish_seen_subcommand_from revoke" -l crl -d 'The CRL file to update (default: the first of tls.crls)' -r -F
complete -c akm -n "__fish_akm_using_subcommand cert; and __fish_seen_subcommand_from revoke" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand cert; and __fish_seen_subcommand_from revoke" -l json -d 'Print JSON instead of text: results, and errors as {"error": {"message", "reason", "exit_code"}} on stdout (the plain message still goes to stderr)'
complete -c akm -n "__fish_akm_using_subcommand cert; and __fish_seen_subcommand_from revoke" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand cert; and __fish_seen_subcommand_from help" -f -a "issue" -d 'Issue a client certificate: CN is the user, each OU a group'
complete -c akm -n "__fish_akm_using_subcommand cert; and __fish_seen_subcommand_from help" -f -a "peer" -d 'Issue a mirror peer certificate (`mirror.crt`, `mirror.key`) and print its fingerprint'
complete -c akm -n "__fish_akm_using_subcommand cert; and __fish_seen_subcommand_from help" -f -a "sign" -d 'Sign a certificate signing request (PEM) with the akm CA as a client certificate: its CN is the user, each OU a group; recorded for `akm cert list` and expiry warnings'
complete -c akm -n "__fish_akm_using_subcommand cert; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the client certificates the akm CA issued: serial, subject, expiry, revoked'
complete -c akm -n "__fish_akm_using_subcommand cert; and __fish_seen_subcommand_from help" -f -a "revoke" -d 'Revoke client certificates: add them to the CRL file, re-signed with a fresh validity (with nothing to add, just re-sign it); then `akm tls reload` or SIGHUP'
complete -c akm -n "__fish_akm_using_subcommand cert; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c akm -n "__fish_akm_using_subcommand key; and not __fish_seen_subcommand_from create get rotate locate list activate revoke destroy attrs export import policy help" -l server -d 'Server address; several (repeated or comma-separated) are tried in order until one is reachable (default: [client] server in the config, also comma-separated)' -r
complete -c akm -n "__fish_akm_using_subcommand key; and not __fish_seen_subcommand_from create get rotate locate list activate revoke destroy attrs export import policy help" -l cert -d 'Client certificate (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and not __fish_seen_subcommand_from create get rotate locate list activate revoke destroy attrs export import policy help" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and not __fish_seen_subcommand_from create get rotate locate list activate revoke destroy attrs export import policy help" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and not __fish_seen_subcommand_from create get rotate locate list activate revoke destroy attrs export import policy help" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and not __fish_seen_subcommand_from create get rotate locate list activate revoke destroy attrs export import policy help" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand key; and not __fish_seen_subcommand_from create get rotate locate list activate revoke destroy attrs export import policy help" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand key; and not __fish_seen_subcommand_from create get rotate locate list activate revoke destroy attrs export import policy help" -f -a "create" -d 'Create a key (AES by default)'
complete -c akm -n "__fish_akm_using_subcommand key; and not __fish_seen_subcommand_from create get rotate locate list activate revoke destroy attrs export import policy help" -f -a "get" -d 'Show a key\'s metadata; with --material, also its key bytes in hex. Name the key by its Unique Identifier, or by --name (its newest version, or --version N: 0 is the first)'
complete -c akm -n "__fish_akm_using_subcommand key; and not __fish_seen_subcommand_from create get rotate locate list activate revoke destroy attrs export import policy help" -f -a "rotate" -d 'Rotate a key (KMIP Re-key): its next version takes the name; the old one keeps decrypting until you revoke it'
complete -c akm -n "__fish_akm_using_subcommand key; and not __fish_seen_subcommand_from create get rotate locate list activate revoke destroy attrs export import policy help" -f -a "locate" -d 'Find your keys by name, group or state'
complete -c akm -n "__fish_akm_using_subcommand key; and not __fish_seen_subcommand_from create get rotate locate list activate revoke destroy attrs export import policy help" -f -a "list" -d 'List all your keys with their name, algorithm and state'
complete -c akm -n "__fish_akm_using_subcommand key; and not __fish_seen_subcommand_from create get rotate locate list activate revoke destroy attrs export import policy help" -f -a "activate" -d 'Activate a key'
complete -c akm -n "__fish_akm_using_subcommand key; and not __fish_seen_subcommand_from create get rotate locate list activate revoke destroy attrs export import policy help" -f -a "revoke" -d 'Revoke a key (deactivate it, or mark it compromised)'
complete -c akm -n "__fish_akm_using_subcommand key; and not __fish_seen_subcommand_from create get rotate locate list activate revoke destroy attrs export import policy help" -f -a "destroy" -d 'Destroy a key\'s material (revoke an Active key first)'
complete -c akm -n "__fish_akm_using_subcommand key; and not __fish_seen_subcommand_from create get rotate locate list activate revoke destroy attrs export import policy help" -f -a "attrs" -d 'Show every attribute of a key'
complete -c akm -n "__fish_akm_using_subcommand key; and not __fish_seen_subcommand_from create get rotate locate list activate revoke destroy attrs export import policy help" -f -a "export" -d 'Export a key wrapped under another key (never in the clear) into a new file (mode 0600) that `akm key import` reads'
complete -c akm -n "__fish_akm_using_subcommand key; and not __fish_seen_subcommand_from create get rotate locate list activate revoke destroy attrs export import policy help" -f -a "import" -d 'Import a key from an `akm key export` file: the server unwraps it with the wrapping key (for a public key, its private key) if it holds it, else keeps it wrapped'
complete -c akm -n "__fish_akm_using_subcommand key; and not __fish_seen_subcommand_from create get rotate locate list activate revoke destroy attrs export import policy help" -f -a "policy" -d 'Show or change a key\'s access policy (changing it needs an administrator)'
complete -c akm -n "__fish_akm_using_subcommand key; and not __fish_seen_subcommand_from create get rotate locate list activate revoke destroy attrs export import policy help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from create" -l name -d 'Name of the key (unique on the server)' -r
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from create" -l alg -d 'aes, hmac-sha256, hmac-sha384 or hmac-sha512' -r
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from create" -l length -d 'Length in bits (AES: 128, 192 or 256)' -r
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from create" -l group -d 'Object Group; repeat for several' -r
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from create" -l access-mode -d 'Who may use it: any, group, user or user-and-group (default: the server\'s)' -r
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from create" -l owner-group -d 'Its owner group: one of your certificate\'s OUs (default: the first)' -r
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from create" -l usage -d 'What it may be used for, comma-separated: encrypt, decrypt, wrap-key, unwrap-key, mac-generate, mac-verify, derive-key, export' -r
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from create" -l deactivate-at -d 'Its Deactivation Date, RFC 3339 (`2027-01-31T00:00:00Z`): from then on it only decrypts and verifies' -r
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from create" -l rotate-every -d 'Rotate it on a schedule (Rotate Automatic, Rotate Interval): every `90d`, `12h`, `30m`... after it becomes active the server re-keys it' -r
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from create" -l server -d 'Server address; several (repeated or comma-separated) are tried in order until one is reachable (default: [client] server in the config, also comma-separated)' -r
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from create" -l cert -d 'Client certificate (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from create" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from create" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from create" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from create" -l activate -d 'Activate it right away'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from create" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from get" -l name -d 'The key\'s name instead of its identifier' -r
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from get" -l version -d 'With --name: this version of the key (0 is the first; default the newest)' -r
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from get" -l server -d 'Server address; several (repeated or comma-separated) are tried in order until one is reachable (default: [client] server in the config, also comma-separated)' -r
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from get" -l cert -d 'Client certificate (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from get" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from get" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from get" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from get" -l material -d 'Print the key material'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from get" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from get" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from rotate" -l server -d 'Server address; several (repeated or comma-separated) are tried in order until one is reachable (default: [client] server in the config, also comma-separated)' -r
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from rotate" -l cert -d 'Client certificate (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from rotate" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from rotate" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from rotate" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from rotate" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from rotate" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from locate" -l name -d 'Name to match' -r
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from locate" -l group -d 'Object Group to match' -r
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from locate" -l state -d 'State to match: pre-active, active, deactivated, compromised' -r
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from locate" -l server -d 'Server address; several (repeated or comma-separated) are tried in order until one is reachable (default: [client] server in the config, also comma-separated)' -r
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from locate" -l cert -d 'Client certificate (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from locate" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from locate" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from locate" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from locate" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from locate" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from list" -l server -d 'Server address; several (repeated or comma-separated) are tried in order until one is reachable (default: [client] server in the config, also comma-separated)' -r
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from list" -l cert -d 'Client certificate (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from list" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from list" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from list" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from list" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from activate" -l server -d 'Server address; several (repeated or comma-separated) are tried in order until one is reachable (default: [client] server in the config, also comma-separated)' -r
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from activate" -l cert -d 'Client certificate (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from activate" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from activate" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from activate" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from activate" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from activate" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from revoke" -l reason -d 'unspecified, compromise, superseded or cessation' -r
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from revoke" -l server -d 'Server address; several (repeated or comma-separated) are tried in order until one is reachable (default: [client] server in the config, also comma-separated)' -r
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from revoke" -l cert -d 'Client certificate (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from revoke" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from revoke" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from revoke" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from revoke" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from revoke" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from destroy" -l server -d 'Server address; several (repeated or comma-separated) are tried in order until one is reachable (default: [client] server in the config, also comma-separated)' -r
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from destroy" -l cert -d 'Client certificate (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from destroy" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from destroy" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from destroy" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from destroy" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from destroy" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from attrs" -l server -d 'Server address; several (repeated or comma-separated) are tried in order until one is reachable (default: [client] server in the config, also comma-separated)' -r
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from attrs" -l cert -d 'Client certificate (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from attrs" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from attrs" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from attrs" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from attrs" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from attrs" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from export" -l wrap-with -d 'An AES wrapping key (Wrap Key usage) on this server' -r
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from export" -l wrap-with-public -d 'An RSA public key (Wrap Key usage) on this server (RSA-OAEP)' -r
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from export" -l out -d 'The file to write (default: `<uid>.akmkey`); never overwritten' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from export" -l server -d 'Server address; several (repeated or comma-separated) are tried in order until one is reachable (default: [client] server in the config, also comma-separated)' -r
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from export" -l cert -d 'Client certificate (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from export" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from export" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from export" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from export" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from export" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from import" -l name -d 'Name the imported key' -r
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from import" -l unwrap-with -d 'The key that unwraps it on this server (default: the one named in the file)' -r
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from import" -l server -d 'Server address; several (repeated or comma-separated) are tried in order until one is reachable (default: [client] server in the config, also comma-separated)' -r
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from import" -l cert -d 'Client certificate (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from import" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from import" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from import" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from import" -l keep-wrapped -d 'Store it wrapped even if this server cannot unwrap it for you (escrow)'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from import" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from import" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from policy" -l server -d 'Server address; several (repeated or comma-separated) are tried in order until one is reachable (default: [client] server in the config, also comma-separated)' -r
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from policy" -l cert -d 'Client certificate (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from policy" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from policy" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from policy" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from policy" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from policy" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from policy" -f -a "show" -d 'Show a key\'s owner, owner group and access mode'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from policy" -f -a "set" -d 'Change a key\'s policy; what is not given is kept'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from policy" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "create" -d 'Create a key (AES by default)'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "get" -d 'Show a key\'s metadata; with --material, also its key bytes in hex. Name the key by its Unique Identifier, or by --name (its newest version, or --version N: 0 is the first)'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "rotate" -d 'Rotate a key (KMIP Re-key): its next version takes the name; the old one keeps decrypting until you revoke it'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "locate" -d 'Find your keys by name, group or state'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "list" -d 'List all your keys with their name, algorithm and state'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "activate" -d 'Activate a key'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "revoke" -d 'Revoke a key (deactivate it, or mark it compromised)'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "destroy" -d 'Destroy a key\'s material (revoke an Active key first)'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "attrs" -d 'Show every attribute of a key'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "export" -d 'Export a key wrapped under another key (never in the clear) into a new file (mode 0600) that `akm key import` reads'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "import" -d 'Import a key from an `akm key export` file: the server unwraps it with the wrapping key (for a public key, its private key) if it holds it, else keeps it wrapped'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "policy" -d 'Show or change a key\'s access policy (changing it needs an administrator)'
complete -c akm -n "__fish_akm_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c akm -n "__fish_akm_using_subcommand audit; and not __fish_seen_subcommand_from verify export public-key help" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand audit; and not __fish_seen_subcommand_from verify export public-key help" -l json -d 'Print JSON instead of text: results, and errors as {"error": {"message", "reason", "exit_code"}} on stdout (the plain message still goes to stderr)'
complete -c akm -n "__fish_akm_using_subcommand audit; and not __fish_seen_subcommand_from verify export public-key help" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand audit; and not __fish_seen_subcommand_from verify export public-key help" -f -a "verify" -d 'Check audit records (journal files, or a syslog receiver\'s files holding key=value, CEF or LEEF records, RFC 5424 or 3164) for modified, deleted, inserted, reordered, truncated or forked records. Files are read in the order given (oldest first)'
complete -c akm -n "__fish_akm_using_subcommand audit; and not __fish_seen_subcommand_from verify export public-key help" -f -a "export" -d 'Write the records as CSV (one row per record, values unescaped) to stdout'
complete -c akm -n "__fish_akm_using_subcommand audit; and not __fish_seen_subcommand_from verify export public-key help" -f -a "public-key" -d 'Print the public key that verifies this server\'s checkpoints'
complete -c akm -n "__fish_akm_using_subcommand audit; and not __fish_seen_subcommand_from verify export public-key help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c akm -n "__fish_akm_using_subcommand audit; and __fish_seen_subcommand_from verify" -l public-key -d 'A public key file (`ed25519:<hex>` lines, from `akm audit public-key`); repeat it (or put several lines in one file) for logs that span a signing-key change. Default: the configured signing key' -r -F
complete -c akm -n "__fish_akm_using_subcommand audit; and __fish_seen_subcommand_from verify" -l max-age -d 'The last signed checkpoint must be at most this many seconds old, however the log ends; a running server\'s journal may then end with records after it. Without it the log must end with the checkpoint written at shutdown or rotation' -r
complete -c akm -n "__fish_akm_using_subcommand audit; and __fish_seen_subcommand_from verify" -l first-serial -d 'The serial the records must start with: 1 when the files go back to the first start, so a missing head is caught too. Without it a copy may start anywhere' -r
complete -c akm -n "__fish_akm_using_subcommand audit; and __fish_seen_subcommand_from verify" -l against -d 'A second copy of the records to compare with (a SIEM\'s file, in any format the verifier reads); repeat it for several files. Fails if the copy holds a record that differs from the journal\'s or any record past the journal\'s end. Give every journal file up to the current one, or the copy\'s later records count as cut off' -r -F
complete -c akm -n "__fish_akm_using_subcommand audit; and __fish_seen_subcommand_from verify" -l expect-checkpoint -d 'A checkpoint seen elsewhere (a SIEM, the metric akm_audit_last_checkpoint_serial, the status page): SERIAL or SERIAL:HASH. The journal must reach it and, with HASH, hold exactly that checkpoint. Repeatable' -r
complete -c akm -n "__fish_akm_using_subcommand audit; and __fish_seen_subcommand_from verify" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand audit; and __fish_seen_subcommand_from verify" -l json -d 'Print JSON instead of text: results, and errors as {"error": {"message", "reason", "exit_code"}} on stdout (the plain message still goes to stderr)'
complete -c akm -n "__fish_akm_using_subcommand audit; and __fish_seen_subcommand_from verify" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand audit; and __fish_seen_subcommand_from export" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand audit; and __fish_seen_subcommand_from export" -l csv -d 'CSV output (the only format)'
complete -c akm -n "__fish_akm_using_subcommand audit; and __fish_seen_subcommand_from export" -l json -d 'Print JSON instead of text: results, and errors as {"error": {"message", "reason", "exit_code"}} on stdout (the plain message still goes to stderr)'
complete -c akm -n "__fish_akm_using_subcommand audit; and __fish_seen_subcommand_from export" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand audit; and __fish_seen_subcommand_from public-key" -l out -d 'Write it to this file instead of stdout' -r -F
complete -c akm -n "__fish_akm_using_subcommand audit; and __fish_seen_subcommand_from public-key" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand audit; and __fish_seen_subcommand_from public-key" -l json -d 'Print JSON instead of text: results, and errors as {"error": {"message", "reason", "exit_code"}} on stdout (the plain message still goes to stderr)'
complete -c akm -n "__fish_akm_using_subcommand audit; and __fish_seen_subcommand_from public-key" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "verify" -d 'Check audit records (journal files, or a syslog receiver\'s files holding key=value, CEF or LEEF records, RFC 5424 or 3164) for modified, deleted, inserted, reordered, truncated or forked records. Files are read in the order given (oldest first)'
complete -c akm -n "__fish_akm_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "export" -d 'Write the records as CSV (one row per record, values unescaped) to stdout'
complete -c akm -n "__fish_akm_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "public-key" -d 'Print the public key that verifies this server\'s checkpoints'
complete -c akm -n "__fish_akm_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c akm -n "__fish_akm_using_subcommand user; and not __fish_seen_subcommand_from list set delete help" -l server -d 'Server address; several (repeated or comma-separated) are tried in order until one is reachable (default: [client] server in the config, also comma-separated)' -r
complete -c akm -n "__fish_akm_using_subcommand user; and not __fish_seen_subcommand_from list set delete help" -l cert -d 'Client certificate, of an administrator (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand user; and not __fish_seen_subcommand_from list set delete help" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand user; and not __fish_seen_subcommand_from list set delete help" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand user; and not __fish_seen_subcommand_from list set delete help" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand user; and not __fish_seen_subcommand_from list set delete help" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand user; and not __fish_seen_subcommand_from list set delete help" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand user; and not __fish_seen_subcommand_from list set delete help" -f -a "list" -d 'List the records'
complete -c akm -n "__fish_akm_using_subcommand user; and not __fish_seen_subcommand_from list set delete help" -f -a "set" -d 'Create or change a record; what is not given is kept (a new record is enabled and grants nothing)'
complete -c akm -n "__fish_akm_using_subcommand user; and not __fish_seen_subcommand_from list set delete help" -f -a "delete" -d 'Delete a record'
complete -c akm -n "__fish_akm_using_subcommand user; and not __fish_seen_subcommand_from list set delete help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c akm -n "__fish_akm_using_subcommand user; and __fish_seen_subcommand_from list" -l server -d 'Server address; several (repeated or comma-separated) are tried in order until one is reachable (default: [client] server in the config, also comma-separated)' -r
complete -c akm -n "__fish_akm_using_subcommand user; and __fish_seen_subcommand_from list" -l cert -d 'Client certificate, of an administrator (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand user; and __fish_seen_subcommand_from list" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand user; and __fish_seen_subcommand_from list" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand user; and __fish_seen_subcommand_from list" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand user; and __fish_seen_subcommand_from list" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand user; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand user; and __fish_seen_subcommand_from set" -l ops -d 'Granted operations, comma-separated: all, read, create, register, locate, check, get, get-attributes, get-attribute-list, add-attribute, modify-attribute, delete-attribute, set-attribute, obtain-lease, activate, revoke, destroy, log ("" for none)' -r
complete -c akm -n "__fish_akm_using_subcommand user; and __fish_seen_subcommand_from set" -l server -d 'Server address; several (repeated or comma-separated) are tried in order until one is reachable (default: [client] server in the config, also comma-separated)' -r
complete -c akm -n "__fish_akm_using_subcommand user; and __fish_seen_subcommand_from set" -l cert -d 'Client certificate, of an administrator (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand user; and __fish_seen_subcommand_from set" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand user; and __fish_seen_subcommand_from set" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand user; and __fish_seen_subcommand_from set" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand user; and __fish_seen_subcommand_from set" -l enable -d 'Enable the record'
complete -c akm -n "__fish_akm_using_subcommand user; and __fish_seen_subcommand_from set" -l disable -d 'Disable it (a disabled user may do nothing; a disabled group grants nothing)'
complete -c akm -n "__fish_akm_using_subcommand user; and __fish_seen_subcommand_from set" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand user; and __fish_seen_subcommand_from set" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand user; and __fish_seen_subcommand_from delete" -l server -d 'Server address; several (repeated or comma-separated) are tried in order until one is reachable (default: [client] server in the config, also comma-separated)' -r
complete -c akm -n "__fish_akm_using_subcommand user; and __fish_seen_subcommand_from delete" -l cert -d 'Client certificate, of an administrator (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand user; and __fish_seen_subcommand_from delete" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand user; and __fish_seen_subcommand_from delete" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand user; and __fish_seen_subcommand_from delete" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand user; and __fish_seen_subcommand_from delete" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand user; and __fish_seen_subcommand_from delete" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the records'
complete -c akm -n "__fish_akm_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "set" -d 'Create or change a record; what is not given is kept (a new record is enabled and grants nothing)'
complete -c akm -n "__fish_akm_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "delete" -d 'Delete a record'
complete -c akm -n "__fish_akm_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c akm -n "__fish_akm_using_subcommand group; and not __fish_seen_subcommand_from list set delete help" -l server -d 'Server address; several (repeated or comma-separated) are tried in order until one is reachable (default: [client] server in the config, also comma-separated)' -r
complete -c akm -n "__fish_akm_using_subcommand group; and not __fish_seen_subcommand_from list set delete help" -l cert -d 'Client certificate, of an administrator (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand group; and not __fish_seen_subcommand_from list set delete help" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand group; and not __fish_seen_subcommand_from list set delete help" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand group; and not __fish_seen_subcommand_from list set delete help" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand group; and not __fish_seen_subcommand_from list set delete help" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand group; and not __fish_seen_subcommand_from list set delete help" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand group; and not __fish_seen_subcommand_from list set delete help" -f -a "list" -d 'List the records'
complete -c akm -n "__fish_akm_using_subcommand group; and not __fish_seen_subcommand_from list set delete help" -f -a "set" -d 'Create or change a record; what is not given is kept (a new record is enabled and grants nothing)'
complete -c akm -n "__fish_akm_using_subcommand group; and not __fish_seen_subcommand_from list set delete help" -f -a "delete" -d 'Delete a record'
complete -c akm -n "__fish_akm_using_subcommand group; and not __fish_seen_subcommand_from list set delete help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c akm -n "__fish_akm_using_subcommand group; and __fish_seen_subcommand_from list" -l server -d 'Server address; several (repeated or comma-separated) are tried in order until one is reachable (default: [client] server in the config, also comma-separated)' -r
complete -c akm -n "__fish_akm_using_subcommand group; and __fish_seen_subcommand_from list" -l cert -d 'Client certificate, of an administrator (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand group; and __fish_seen_subcommand_from list" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand group; and __fish_seen_subcommand_from list" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand group; and __fish_seen_subcommand_from list" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand group; and __fish_seen_subcommand_from list" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand group; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand group; and __fish_seen_subcommand_from set" -l ops -d 'Granted operations, comma-separated: all, read, create, register, locate, check, get, get-attributes, get-attribute-list, add-attribute, modify-attribute, delete-attribute, set-attribute, obtain-lease, activate, revoke, destroy, log ("" for none)' -r
complete -c akm -n "__fish_akm_using_subcommand group; and __fish_seen_subcommand_from set" -l server -d 'Server address; several (repeated or comma-separated) are tried in order until one is reachable (default: [client] server in the config, also comma-separated)' -r
complete -c akm -n "__fish_akm_using_subcommand group; and __fish_seen_subcommand_from set" -l cert -d 'Client certificate, of an administrator (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand group; and __fish_seen_subcommand_from set" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand group; and __fish_seen_subcommand_from set" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand group; and __fish_seen_subcommand_from set" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand group; and __fish_seen_subcommand_from set" -l enable -d 'Enable the record'
complete -c akm -n "__fish_akm_using_subcommand group; and __fish_seen_subcommand_from set" -l disable -d 'Disable it (a disabled user may do nothing; a disabled group grants nothing)'
complete -c akm -n "__fish_akm_using_subcommand group; and __fish_seen_subcommand_from set" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand group; and __fish_seen_subcommand_from set" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand group; and __fish_seen_subcommand_from delete" -l server -d 'Server address; several (repeated or comma-separated) are tried in order until one is reachable (default: [client] server in the config, also comma-separated)' -r
complete -c akm -n "__fish_akm_using_subcommand group; and __fish_seen_subcommand_from delete" -l cert -d 'Client certificate, of an administrator (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand group; and __fish_seen_subcommand_from delete" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand group; and __fish_seen_subcommand_from delete" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand group; and __fish_seen_subcommand_from delete" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand group; and __fish_seen_subcommand_from delete" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand group; and __fish_seen_subcommand_from delete" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand group; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the records'
complete -c akm -n "__fish_akm_using_subcommand group; and __fish_seen_subcommand_from help" -f -a "set" -d 'Create or change a record; what is not given is kept (a new record is enabled and grants nothing)'
complete -c akm -n "__fish_akm_using_subcommand group; and __fish_seen_subcommand_from help" -f -a "delete" -d 'Delete a record'
complete -c akm -n "__fish_akm_using_subcommand group; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c akm -n "__fish_akm_using_subcommand tls; and not __fish_seen_subcommand_from reload help" -l server -d 'Server address; several (repeated or comma-separated) are tried in order until one is reachable (default: [client] server in the config, also comma-separated)' -r
complete -c akm -n "__fish_akm_using_subcommand tls; and not __fish_seen_subcommand_from reload help" -l cert -d 'Client certificate, of an administrator (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand tls; and not __fish_seen_subcommand_from reload help" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand tls; and not __fish_seen_subcommand_from reload help" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand tls; and not __fish_seen_subcommand_from reload help" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand tls; and not __fish_seen_subcommand_from reload help" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand tls; and not __fish_seen_subcommand_from reload help" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand tls; and not __fish_seen_subcommand_from reload help" -f -a "reload" -d 'Make the server reload its configuration, TLS files included (CA bundle, pins, CRLs), as `akm reload` and SIGHUP do; new connections use them'
complete -c akm -n "__fish_akm_using_subcommand tls; and not __fish_seen_subcommand_from reload help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c akm -n "__fish_akm_using_subcommand tls; and __fish_seen_subcommand_from reload" -l server -d 'Server address; several (repeated or comma-separated) are tried in order until one is reachable (default: [client] server in the config, also comma-separated)' -r
complete -c akm -n "__fish_akm_using_subcommand tls; and __fish_seen_subcommand_from reload" -l cert -d 'Client certificate, of an administrator (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand tls; and __fish_seen_subcommand_from reload" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand tls; and __fish_seen_subcommand_from reload" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand tls; and __fish_seen_subcommand_from reload" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand tls; and __fish_seen_subcommand_from reload" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand tls; and __fish_seen_subcommand_from reload" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand tls; and __fish_seen_subcommand_from help" -f -a "reload" -d 'Make the server reload its configuration, TLS files included (CA bundle, pins, CRLs), as `akm reload` and SIGHUP do; new connections use them'
complete -c akm -n "__fish_akm_using_subcommand tls; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c akm -n "__fish_akm_using_subcommand reload" -l server -d 'Server address; several (repeated or comma-separated) are tried in order until one is reachable (default: [client] server in the config, also comma-separated)' -r
complete -c akm -n "__fish_akm_using_subcommand reload" -l cert -d 'Client certificate, of an administrator (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand reload" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand reload" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand reload" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand reload" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand reload" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand kek; and not __fish_seen_subcommand_from seal status rotate help" -l server -d 'Server address; several (repeated or comma-separated) are tried in order until one is reachable (default: [client] server in the config, also comma-separated)' -r
complete -c akm -n "__fish_akm_using_subcommand kek; and not __fish_seen_subcommand_from seal status rotate help" -l cert -d 'Client certificate, of an administrator (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand kek; and not __fish_seen_subcommand_from seal status rotate help" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand kek; and not __fish_seen_subcommand_from seal status rotate help" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand kek; and not __fish_seen_subcommand_from seal status rotate help" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand kek; and not __fish_seen_subcommand_from seal status rotate help" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand kek; and not __fish_seen_subcommand_from seal status rotate help" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand kek; and not __fish_seen_subcommand_from seal status rotate help" -f -a "seal" -d 'Seal the KEK of a stopped node: encrypt it under a master key split into custodian shares (--shares N --threshold M --out DIR) or derived from a passphrase read from stdin (--passphrase-stdin), then delete the plain KEK file'
complete -c akm -n "__fish_akm_using_subcommand kek; and not __fish_seen_subcommand_from seal status rotate help" -f -a "status" -d 'Show whether the running server is sealed and the unseal progress'
complete -c akm -n "__fish_akm_using_subcommand kek; and not __fish_seen_subcommand_from seal status rotate help" -f -a "rotate" -d 'Rotate the running server\'s KEK online: a new KEK wraps from now on and every stored key is rewrapped in batches, with progress; the old KEK is retired when nothing references it. Run it again to resume an interrupted rotation'
complete -c akm -n "__fish_akm_using_subcommand kek; and not __fish_seen_subcommand_from seal status rotate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c akm -n "__fish_akm_using_subcommand kek; and __fish_seen_subcommand_from seal" -l shares -d 'Number of custodian shares (N)' -r
complete -c akm -n "__fish_akm_using_subcommand kek; and __fish_seen_subcommand_from seal" -l threshold -d 'Shares needed to unseal (M)' -r
complete -c akm -n "__fish_akm_using_subcommand kek; and __fish_seen_subcommand_from seal" -l out -d 'Directory for the share files (share-1.txt ... share-N.txt, mode 0600): hand each to its custodian and delete it here. `-` shows the shares once on stdout instead' -r -F
complete -c akm -n "__fish_akm_using_subcommand kek; and __fish_seen_subcommand_from seal" -l server -d 'Server address; several (repeated or comma-separated) are tried in order until one is reachable (default: [client] server in the config, also comma-separated)' -r
complete -c akm -n "__fish_akm_using_subcommand kek; and __fish_seen_subcommand_from seal" -l cert -d 'Client certificate, of an administrator (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand kek; and __fish_seen_subcommand_from seal" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand kek; and __fish_seen_subcommand_from seal" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand kek; and __fish_seen_subcommand_from seal" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand kek; and __fish_seen_subcommand_from seal" -l passphrase-stdin -d 'Derive the master key from a passphrase (first line of stdin) with Argon2id'
complete -c akm -n "__fish_akm_using_subcommand kek; and __fish_seen_subcommand_from seal" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand kek; and __fish_seen_subcommand_from seal" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand kek; and __fish_seen_subcommand_from status" -l server -d 'Server address; several (repeated or comma-separated) are tried in order until one is reachable (default: [client] server in the config, also comma-separated)' -r
complete -c akm -n "__fish_akm_using_subcommand kek; and __fish_seen_subcommand_from status" -l cert -d 'Client certificate, of an administrator (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand kek; and __fish_seen_subcommand_from status" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand kek; and __fish_seen_subcommand_from status" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand kek; and __fish_seen_subcommand_from status" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand kek; and __fish_seen_subcommand_from status" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand kek; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand kek; and __fish_seen_subcommand_from rotate" -l batch -d 'Keys rewrapped per request' -r
complete -c akm -n "__fish_akm_using_subcommand kek; and __fish_seen_subcommand_from rotate" -l server -d 'Server address; several (repeated or comma-separated) are tried in order until one is reachable (default: [client] server in the config, also comma-separated)' -r
complete -c akm -n "__fish_akm_using_subcommand kek; and __fish_seen_subcommand_from rotate" -l cert -d 'Client certificate, of an administrator (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand kek; and __fish_seen_subcommand_from rotate" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand kek; and __fish_seen_subcommand_from rotate" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand kek; and __fish_seen_subcommand_from rotate" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand kek; and __fish_seen_subcommand_from rotate" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand kek; and __fish_seen_subcommand_from rotate" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand kek; and __fish_seen_subcommand_from help" -f -a "seal" -d 'Seal the KEK of a stopped node: encrypt it under a master key split into custodian shares (--shares N --threshold M --out DIR) or derived from a passphrase read from stdin (--passphrase-stdin), then delete the plain KEK file'
complete -c akm -n "__fish_akm_using_subcommand kek; and __fish_seen_subcommand_from help" -f -a "status" -d 'Show whether the running server is sealed and the unseal progress'
complete -c akm -n "__fish_akm_using_subcommand kek; and __fish_seen_subcommand_from help" -f -a "rotate" -d 'Rotate the running server\'s KEK online: a new KEK wraps from now on and every stored key is rewrapped in batches, with progress; the old KEK is retired when nothing references it. Run it again to resume an interrupted rotation'
complete -c akm -n "__fish_akm_using_subcommand kek; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c akm -n "__fish_akm_using_subcommand unseal" -l server -d 'Server address; several (repeated or comma-separated) are tried in order until one is reachable (default: [client] server in the config, also comma-separated)' -r
complete -c akm -n "__fish_akm_using_subcommand unseal" -l cert -d 'Client certificate, of an administrator (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand unseal" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand unseal" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand unseal" -l share-file -d 'A custodian share file (as `akm kek seal` wrote it)' -r -F
complete -c akm -n "__fish_akm_using_subcommand unseal" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand unseal" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand unseal" -l passphrase-stdin -d 'Read the passphrase from the first line of stdin'
complete -c akm -n "__fish_akm_using_subcommand unseal" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand authorize" -l server -d 'Server address; several (repeated or comma-separated) are tried in order until one is reachable (default: [client] server in the config, also comma-separated)' -r
complete -c akm -n "__fish_akm_using_subcommand authorize" -l cert -d 'Client certificate, of an administrator (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand authorize" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand authorize" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand authorize" -l user -d 'The user (certificate CN) who may then act' -r
complete -c akm -n "__fish_akm_using_subcommand authorize" -l op -d 'The guarded operation: destroy, kek-rotate, backup or policy' -r
complete -c akm -n "__fish_akm_using_subcommand authorize" -l minutes -d 'Window length in minutes (default and most: dual_control.window_minutes)' -r
complete -c akm -n "__fish_akm_using_subcommand authorize" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand authorize" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand authorize" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand approve" -l server -d 'Server address; several (repeated or comma-separated) are tried in order until one is reachable (default: [client] server in the config, also comma-separated)' -r
complete -c akm -n "__fish_akm_using_subcommand approve" -l cert -d 'Client certificate, of an administrator (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand approve" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand approve" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand approve" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand approve" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand approve" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand backup" -l server -d 'Server address; several (repeated or comma-separated) are tried in order until one is reachable (default: [client] server in the config, also comma-separated)' -r
complete -c akm -n "__fish_akm_using_subcommand backup" -l cert -d 'Client certificate, of an administrator (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand backup" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand backup" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand backup" -l out -d 'With --kek-and-config: the archive to write (default: the backup directory)' -r -F
complete -c akm -n "__fish_akm_using_subcommand backup" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand backup" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand backup" -l kek-and-config -d 'Instead of the key database: write one archive of the sealed KEK, the KEK archive, the configuration and the PKI files that rebuild this node (read here, no server)'
complete -c akm -n "__fish_akm_using_subcommand backup" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand restore" -l kek-and-config -d 'Restore a KEK-and-configuration archive (from `akm backup --kek-and-config`) into this node\'s directories: the configuration goes to --config, the rest beside it' -r -F
complete -c akm -n "__fish_akm_using_subcommand restore" -l share-file -d 'A custodian share file, when the node\'s KEK is sealed with shares; repeat up to the threshold' -r -F
complete -c akm -n "__fish_akm_using_subcommand restore" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand restore" -l force -d 'With --kek-and-config: overwrite files that exist. With a backup file and a PostgreSQL store: replace the database\'s contents although it holds objects (stop every akm node on it first)'
complete -c akm -n "__fish_akm_using_subcommand restore" -l passphrase-stdin -d 'Read the passphrase from stdin, when the node\'s KEK is sealed with one'
complete -c akm -n "__fish_akm_using_subcommand restore" -l verify-only -d 'Only verify the file (authenticate every byte); write nothing'
complete -c akm -n "__fish_akm_using_subcommand restore" -l json -d 'Print JSON instead of text: results, and errors as {"error": {"message", "reason", "exit_code"}} on stdout (the plain message still goes to stderr)'
complete -c akm -n "__fish_akm_using_subcommand restore" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand conformance; and not __fish_seen_subcommand_from replay help" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand conformance; and not __fish_seen_subcommand_from replay help" -l json -d 'Print JSON instead of text: results, and errors as {"error": {"message", "reason", "exit_code"}} on stdout (the plain message still goes to stderr)'
complete -c akm -n "__fish_akm_using_subcommand conformance; and not __fish_seen_subcommand_from replay help" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand conformance; and not __fish_seen_subcommand_from replay help" -f -a "replay" -d 'Replay test-case files, one connection per file; exit 1 if any fails'
complete -c akm -n "__fish_akm_using_subcommand conformance; and not __fish_seen_subcommand_from replay help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c akm -n "__fish_akm_using_subcommand conformance; and __fish_seen_subcommand_from replay" -l server -d 'Server address (default: [client] server in the config)' -r
complete -c akm -n "__fish_akm_using_subcommand conformance; and __fish_seen_subcommand_from replay" -l cert -d 'Client certificate (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand conformance; and __fish_seen_subcommand_from replay" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand conformance; and __fish_seen_subcommand_from replay" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand conformance; and __fish_seen_subcommand_from replay" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand conformance; and __fish_seen_subcommand_from replay" -l table -d 'Also print a Markdown table of pass counts per profile group and suite'
complete -c akm -n "__fish_akm_using_subcommand conformance; and __fish_seen_subcommand_from replay" -l json -d 'Print JSON instead of text: results, and errors as {"error": {"message", "reason", "exit_code"}} on stdout (the plain message still goes to stderr)'
complete -c akm -n "__fish_akm_using_subcommand conformance; and __fish_seen_subcommand_from replay" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand conformance; and __fish_seen_subcommand_from help" -f -a "replay" -d 'Replay test-case files, one connection per file; exit 1 if any fails'
complete -c akm -n "__fish_akm_using_subcommand conformance; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c akm -n "__fish_akm_using_subcommand bench" -l server -d 'Server address host:port (default: [client] server in the config)' -r
complete -c akm -n "__fish_akm_using_subcommand bench" -l cert -d 'Client certificate (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand bench" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand bench" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand bench" -l connections -d 'Concurrent connections (1 to 256), each with one request in flight' -r
complete -c akm -n "__fish_akm_using_subcommand bench" -l mix -d 'Operation mix by weight, e.g. `get=8,locate=1,create=1` (create, register, get, locate, encrypt)' -r
complete -c akm -n "__fish_akm_using_subcommand bench" -l kmip -d 'KMIP version: 1.2, 1.4, 2.0 or 2.1' -r
complete -c akm -n "__fish_akm_using_subcommand bench" -l batch -d 'Batch items per request message' -r
complete -c akm -n "__fish_akm_using_subcommand bench" -l warmup -d 'Seconds of warm-up before measuring' -r
complete -c akm -n "__fish_akm_using_subcommand bench" -l duration -d 'Seconds to measure' -r
complete -c akm -n "__fish_akm_using_subcommand bench" -l count -d 'Stop after this many operations (batch items) instead of at the end of --duration; with `--mix create --warmup 0 --keep` this fills a server with a known number of keys' -r
complete -c akm -n "__fish_akm_using_subcommand bench" -l keys -d 'Keys created before the run for Get, Locate and Encrypt to use' -r
complete -c akm -n "__fish_akm_using_subcommand bench" -l data-bytes -d 'Bytes of plaintext in each Encrypt (AES-256-GCM, the server chooses the IV)' -r
complete -c akm -n "__fish_akm_using_subcommand bench" -l server-pid -d 'The server\'s process ID: report its CPU time per operation and peak memory (Linux)' -r
complete -c akm -n "__fish_akm_using_subcommand bench" -l idle -d 'Instead of a load: open this many TLS connections, send one Discover Versions on each, hold them idle and report the server\'s resident memory (needs --server-pid)' -r
complete -c akm -n "__fish_akm_using_subcommand bench" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand bench" -l new-connection -d 'Open a new TLS connection for every request (full handshake, or resumption when the server issues session tickets or caches sessions)'
complete -c akm -n "__fish_akm_using_subcommand bench" -l no-resumption -d 'Never resume a TLS session: every new connection makes a full handshake with certificate verification on both sides (measures clients that do not resume)'
complete -c akm -n "__fish_akm_using_subcommand bench" -l json -d 'Print JSON instead of text'
complete -c akm -n "__fish_akm_using_subcommand bench" -l keep -d 'Keep the keys the run created (by default they are destroyed at the end, Active ones revoked first); with `--mix create --count N` this fills a server with N keys'
complete -c akm -n "__fish_akm_using_subcommand bench" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand report; and not __fish_seen_subcommand_from keys help" -l server -d 'Server address; several (repeated or comma-separated) are tried in order until one is reachable (default: [client] server in the config, also comma-separated)' -r
complete -c akm -n "__fish_akm_using_subcommand report; and not __fish_seen_subcommand_from keys help" -l cert -d 'Client certificate, of an administrator (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand report; and not __fish_seen_subcommand_from keys help" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand report; and not __fish_seen_subcommand_from keys help" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand report; and not __fish_seen_subcommand_from keys help" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand report; and not __fish_seen_subcommand_from keys help" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand report; and not __fish_seen_subcommand_from keys help" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand report; and not __fish_seen_subcommand_from keys help" -f -a "keys" -d 'Every key and object on the server with its owner, group, state, dates and version (administrators only)'
complete -c akm -n "__fish_akm_using_subcommand report; and not __fish_seen_subcommand_from keys help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c akm -n "__fish_akm_using_subcommand report; and __fish_seen_subcommand_from keys" -l server -d 'Server address; several (repeated or comma-separated) are tried in order until one is reachable (default: [client] server in the config, also comma-separated)' -r
complete -c akm -n "__fish_akm_using_subcommand report; and __fish_seen_subcommand_from keys" -l cert -d 'Client certificate, of an administrator (default: [client] cert)' -r -F
complete -c akm -n "__fish_akm_using_subcommand report; and __fish_seen_subcommand_from keys" -l key -d 'Client private key (default: [client] key)' -r -F
complete -c akm -n "__fish_akm_using_subcommand report; and __fish_seen_subcommand_from keys" -l ca -d 'CA of the server certificate (default: [client] ca)' -r -F
complete -c akm -n "__fish_akm_using_subcommand report; and __fish_seen_subcommand_from keys" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand report; and __fish_seen_subcommand_from keys" -l csv -d 'CSV (RFC 4180, a header line first) instead of a table'
complete -c akm -n "__fish_akm_using_subcommand report; and __fish_seen_subcommand_from keys" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand report; and __fish_seen_subcommand_from keys" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand report; and __fish_seen_subcommand_from help" -f -a "keys" -d 'Every key and object on the server with its owner, group, state, dates and version (administrators only)'
complete -c akm -n "__fish_akm_using_subcommand report; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c akm -n "__fish_akm_using_subcommand store; and not __fish_seen_subcommand_from migrate help" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand store; and not __fish_seen_subcommand_from migrate help" -l json -d 'Print JSON instead of text: results, and errors as {"error": {"message", "reason", "exit_code"}} on stdout (the plain message still goes to stderr)'
complete -c akm -n "__fish_akm_using_subcommand store; and not __fish_seen_subcommand_from migrate help" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand store; and not __fish_seen_subcommand_from migrate help" -f -a "migrate" -d 'Apply the store\'s pending schema migrations (before starting upgraded nodes on a shared PostgreSQL database) and print the schema version before and after'
complete -c akm -n "__fish_akm_using_subcommand store; and not __fish_seen_subcommand_from migrate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c akm -n "__fish_akm_using_subcommand store; and __fish_seen_subcommand_from migrate" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand store; and __fish_seen_subcommand_from migrate" -l check -d 'Only report the schema version and whether migrations are pending (exit 1 if they are); change nothing'
complete -c akm -n "__fish_akm_using_subcommand store; and __fish_seen_subcommand_from migrate" -l json -d 'Print JSON instead of text: results, and errors as {"error": {"message", "reason", "exit_code"}} on stdout (the plain message still goes to stderr)'
complete -c akm -n "__fish_akm_using_subcommand store; and __fish_seen_subcommand_from migrate" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand store; and __fish_seen_subcommand_from help" -f -a "migrate" -d 'Apply the store\'s pending schema migrations (before starting upgraded nodes on a shared PostgreSQL database) and print the schema version before and after'
complete -c akm -n "__fish_akm_using_subcommand store; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c akm -n "__fish_akm_using_subcommand mirror; and not __fish_seen_subcommand_from status help" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand mirror; and not __fish_seen_subcommand_from status help" -l json -d 'Print JSON instead of text: results, and errors as {"error": {"message", "reason", "exit_code"}} on stdout (the plain message still goes to stderr)'
complete -c akm -n "__fish_akm_using_subcommand mirror; and not __fish_seen_subcommand_from status help" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand mirror; and not __fish_seen_subcommand_from status help" -f -a "status" -d 'Peers, connected or not, lag in entries and seconds, last error'
complete -c akm -n "__fish_akm_using_subcommand mirror; and not __fish_seen_subcommand_from status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c akm -n "__fish_akm_using_subcommand mirror; and __fish_seen_subcommand_from status" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand mirror; and __fish_seen_subcommand_from status" -l json -d 'Print JSON instead of a table'
complete -c akm -n "__fish_akm_using_subcommand mirror; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand mirror; and __fish_seen_subcommand_from help" -f -a "status" -d 'Peers, connected or not, lag in entries and seconds, last error'
complete -c akm -n "__fish_akm_using_subcommand mirror; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c akm -n "__fish_akm_using_subcommand generate-docs" -l out -d 'The directory to write `man/` and `completions/` into (created if missing)' -r -F
complete -c akm -n "__fish_akm_using_subcommand generate-docs" -l config -d 'The configuration file (default: $AKM_CONFIG, else ./config/akm.toml, else /etc/akm/akm.toml: the first that exists)' -r -F
complete -c akm -n "__fish_akm_using_subcommand generate-docs" -l json -d 'Print JSON instead of text: results, and errors as {"error": {"message", "reason", "exit_code"}} on stdout (the plain message still goes to stderr)'
complete -c akm -n "__fish_akm_using_subcommand generate-docs" -s h -l help -d 'Print help'
complete -c akm -n "__fish_akm_using_subcommand help; and not __fish_seen_subcommand_from serve init cert key audit user group tls reload kek unseal authorize approve backup restore conformance bench report store mirror generate-docs help" -f -a "serve" -d 'Run the KMIP server (initializing first if the config allows and nothing exists yet)'
complete -c akm -n "__fish_akm_using_subcommand help; and not __fish_seen_subcommand_from serve init cert key audit user group tls reload kek unseal authorize approve backup restore conformance bench report store mirror generate-docs help" -f -a "init" -d 'Create the data directory, the KEK and a development PKI'
complete -c akm -n "__fish_akm_using_subcommand help; and not __fish_seen_subcommand_from serve init cert key audit user group tls reload kek unseal authorize approve backup restore conformance bench report store mirror generate-docs help" -f -a "cert" -d 'Client certificates from the development CA'
complete -c akm -n "__fish_akm_using_subcommand help; and not __fish_seen_subcommand_from serve init cert key audit user group tls reload kek unseal authorize approve backup restore conformance bench report store mirror generate-docs help" -f -a "key" -d 'Manage keys on a running server (a KMIP client over mutual TLS)'
complete -c akm -n "__fish_akm_using_subcommand help; and not __fish_seen_subcommand_from serve init cert key audit user group tls reload kek unseal authorize approve backup restore conformance bench report store mirror generate-docs help" -f -a "audit" -d 'Verify and export audit records; print the audit public key'
complete -c akm -n "__fish_akm_using_subcommand help; and not __fish_seen_subcommand_from serve init cert key audit user group tls reload kek unseal authorize approve backup restore conformance bench report store mirror generate-docs help" -f -a "user" -d 'Manage user records on a running server (administrators only)'
complete -c akm -n "__fish_akm_using_subcommand help; and not __fish_seen_subcommand_from serve init cert key audit user group tls reload kek unseal authorize approve backup restore conformance bench report store mirror generate-docs help" -f -a "group" -d 'Manage group records on a running server (administrators only)'
complete -c akm -n "__fish_akm_using_subcommand help; and not __fish_seen_subcommand_from serve init cert key audit user group tls reload kek unseal authorize approve backup restore conformance bench report store mirror generate-docs help" -f -a "tls" -d 'The running server\'s TLS configuration (administrators only)'
complete -c akm -n "__fish_akm_using_subcommand help; and not __fish_seen_subcommand_from serve init cert key audit user group tls reload kek unseal authorize approve backup restore conformance bench report store mirror generate-docs help" -f -a "reload" -d 'Make the running server re-read its configuration file, as SIGHUP does: TLS files, the access section, log level (administrators only). A refused file is printed; exit 2'
complete -c akm -n "__fish_akm_using_subcommand help; and not __fish_seen_subcommand_from serve init cert key audit user group tls reload kek unseal authorize approve backup restore conformance bench report store mirror generate-docs help" -f -a "kek" -d 'KEK custody: seal a stopped node\'s KEK (`akm kek seal`), or show the running server\'s seal status (`akm kek status`, administrators only)'
complete -c akm -n "__fish_akm_using_subcommand help; and not __fish_seen_subcommand_from serve init cert key audit user group tls reload kek unseal authorize approve backup restore conformance bench report store mirror generate-docs help" -f -a "unseal" -d 'Offer a custodian share or the passphrase to a sealed server (administrators only)'
complete -c akm -n "__fish_akm_using_subcommand help; and not __fish_seen_subcommand_from serve init cert key audit user group tls reload kek unseal authorize approve backup restore conformance bench report store mirror generate-docs help" -f -a "authorize" -d 'Dual control: as a second administrator, let another user perform a guarded operation for a few minutes (administrators only)'
complete -c akm -n "__fish_akm_using_subcommand help; and not __fish_seen_subcommand_from serve init cert key audit user group tls reload kek unseal authorize approve backup restore conformance bench report store mirror generate-docs help" -f -a "approve" -d 'Dual control: as a second administrator, approve a refused request by its id'
complete -c akm -n "__fish_akm_using_subcommand help; and not __fish_seen_subcommand_from serve init cert key audit user group tls reload kek unseal authorize approve backup restore conformance bench report store mirror generate-docs help" -f -a "backup" -d 'Take an online backup of the running server\'s key database into its backup directory (administrators only)'
complete -c akm -n "__fish_akm_using_subcommand help; and not __fish_seen_subcommand_from serve init cert key audit user group tls reload kek unseal authorize approve backup restore conformance bench report store mirror generate-docs help" -f -a "restore" -d 'Restore a backup into an empty, stopped node (verifies the whole file first)'
complete -c akm -n "__fish_akm_using_subcommand help; and not __fish_seen_subcommand_from serve init cert key audit user group tls reload kek unseal authorize approve backup restore conformance bench report store mirror generate-docs help" -f -a "conformance" -d 'Replay OASIS KMIP XML test cases against a running server (a KMIP client over mTLS)'
complete -c akm -n "__fish_akm_using_subcommand help; and not __fish_seen_subcommand_from serve init cert key audit user group tls reload kek unseal authorize approve backup restore conformance bench report store mirror generate-docs help" -f -a "bench" -d 'A KMIP load tool for any KMIP server: ops/s, latency percentiles, server CPU and memory'
complete -c akm -n "__fish_akm_using_subcommand help; and not __fish_seen_subcommand_from serve init cert key audit user group tls reload kek unseal authorize approve backup restore conformance bench report store mirror generate-docs help" -f -a "report" -d 'Reports for auditors: `akm report keys [--csv]`, the key inventory (administrators only)'
complete -c akm -n "__fish_akm_using_subcommand help; and not __fish_seen_subcommand_from serve init cert key audit user group tls reload kek unseal authorize approve backup restore conformance bench report store mirror generate-docs help" -f -a "store" -d 'The key store\'s schema: `akm store migrate [--check]` (no KEK, no server needed)'
complete -c akm -n "__fish_akm_using_subcommand help; and not __fish_seen_subcommand_from serve init cert key audit user group tls reload kek unseal authorize approve backup restore conformance bench report store mirror generate-docs help" -f -a "mirror" -d 'Mirroring to failover peers'
complete -c akm -n "__fish_akm_using_subcommand help; and not __fish_seen_subcommand_from serve init cert key audit user group tls reload kek unseal authorize approve backup restore conformance bench report store mirror generate-docs help" -f -a "generate-docs" -d 'Write the man pages and shell completions generated from this command line into DIR (for packagers; hidden from help)'
complete -c akm -n "__fish_akm_using_subcommand help; and not __fish_seen_subcommand_from serve init cert key audit user group tls reload kek unseal authorize approve backup restore conformance bench report store mirror generate-docs help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c akm -n "__fish_akm_using_subcommand help; and __fish_seen_subcommand_from cert" -f -a "issue" -d 'Issue a client certificate: CN is the user, each OU a group'
complete -c akm -n "__fish_akm_using_subcommand help; and __fish_seen_subcommand_from cert" -f -a "peer" -d 'Issue a mirror peer certificate (`mirror.crt`, `mirror.key`) and print its fingerprint'
complete -c akm -n "__fish_akm_using_subcommand help; and __fish_seen_subcommand_from cert" -f -a "sign" -d 'Sign a certificate signing request (PEM) with the akm CA as a client certificate: its CN is the user, each OU a group; recorded for `akm cert list` and expiry warnings'
complete -c akm -n "__fish_akm_using_subcommand help; and __fish_seen_subcommand_from cert" -f -a "list" -d 'List the client certificates the akm CA issued: serial, subject, expiry, revoked'
complete -c akm -n "__fish_akm_using_subcommand help; and __fish_seen_subcommand_from cert" -f -a "revoke" -d 'Revoke client certificates: add them to the CRL file, re-signed with a fresh validity (with nothing to add, just re-sign it); then `akm tls reload` or SIGHUP'
complete -c akm -n "__fish_akm_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "create" -d 'Create a key (AES by default)'
complete -c akm -n "__fish_akm_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "get" -d 'Show a key\'s metadata; with --material, also its key bytes in hex. Name the key by its Unique Identifier, or by --name (its newest version, or --version N: 0 is the first)'
complete -c akm -n "__fish_akm_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "rotate" -d 'Rotate a key (KMIP Re-key): its next version takes the name; the old one keeps decrypting until you revoke it'
complete -c akm -n "__fish_akm_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "locate" -d 'Find your keys by name, group or state'
complete -c akm -n "__fish_akm_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "list" -d 'List all your keys with their name, algorithm and state'
complete -c akm -n "__fish_akm_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "activate" -d 'Activate a key'
complete -c akm -n "__fish_akm_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "revoke" -d 'Revoke a key (deactivate it, or mark it compromised)'
complete -c akm -n "__fish_akm_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "destroy" -d 'Destroy a key\'s material (revoke an Active key first)'
complete -c akm -n "__fish_akm_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "attrs" -d 'Show every attribute of a key'
complete -c akm -n "__fish_akm_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "export" -d 'Export a key wrapped under another key (never in the clear) into a new file (mode 0600) that `akm key import` reads'
complete -c akm -n "__fish_akm_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "import" -d 'Import a key from an `akm key export` file: the server unwraps it with the wrapping key (for a public key, its private key) if it holds it, else keeps it wrapped'
complete -c akm -n "__fish_akm_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "policy" -d 'Show or change a key\'s access policy (changing it needs an administrator)'
complete -c akm -n "__fish_akm_using_subcommand help; and __fish_seen_subcommand_from audit" -f -a "verify" -d 'Check audit records (journal files, or a syslog receiver\'s files holding key=value, CEF or LEEF records, RFC 5424 or 3164) for modified, deleted, inserted, reordered, truncated or forked records. Files are read in the order given (oldest first)'
complete -c akm -n "__fish_akm_using_subcommand help; and __fish_seen_subcommand_from audit" -f -a "export" -d 'Write the records as CSV (one row per record, values unescaped) to stdout'
complete -c akm -n "__fish_akm_using_subcommand help; and __fish_seen_subcommand_from audit" -f -a "public-key" -d 'Print the public key that verifies this server\'s checkpoints'
complete -c akm -n "__fish_akm_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "list" -d 'List the records'
complete -c akm -n "__fish_akm_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "set" -d 'Create or change a record; what is not given is kept (a new record is enabled and grants nothing)'
complete -c akm -n "__fish_akm_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "delete" -d 'Delete a record'
complete -c akm -n "__fish_akm_using_subcommand help; and __fish_seen_subcommand_from group" -f -a "list" -d 'List the records'
complete -c akm -n "__fish_akm_using_subcommand help; and __fish_seen_subcommand_from group" -f -a "set" -d 'Create or change a record; what is not given is kept (a new record is enabled and grants nothing)'
complete -c akm -n "__fish_akm_using_subcommand help; and __fish_seen_subcommand_from group" -f -a "delete" -d 'Delete a record'
complete -c akm -n "__fish_akm_using_subcommand help; and __fish_seen_subcommand_from tls" -f -a "reload" -d 'Make the server reload its configuration, TLS files included (CA bundle, pins, CRLs), as `akm reload` and SIGHUP do; new connections use them'
complete -c akm -n "__fish_akm_using_subcommand help; and __fish_seen_subcommand_from kek" -f -a "seal" -d 'Seal the KEK of a stopped node: encrypt it under a master key split into custodian shares (--shares N --threshold M --out DIR) or derived from a passphrase read from stdin (--passphrase-stdin), then delete the plain KEK file'
complete -c akm -n "__fish_akm_using_subcommand help; and __fish_seen_subcommand_from kek" -f -a "status" -d 'Show whether the running server is sealed and the unseal progress'
complete -c akm -n "__fish_akm_using_subcommand help; and __fish_seen_subcommand_from kek" -f -a "rotate" -d 'Rotate the running server\'s KEK online: a new KEK wraps from now on and every stored key is rewrapped in batches, with progress; the old KEK is retired when nothing references it. Run it again to resume an interrupted rotation'
complete -c akm -n "__fish_akm_using_subcommand help; and __fish_seen_subcommand_from conformance" -f -a "replay" -d 'Replay test-case files, one connection per file; exit 1 if any fails'
complete -c akm -n "__fish_akm_using_subcommand help; and __fish_seen_subcommand_from report" -f -a "keys" -d 'Every key and object on the server with its owner, group, state, dates and version (administrators only)'
complete -c akm -n "__fish_akm_using_subcommand help; and __fish_seen_subcommand_from store" -f -a "migrate" -d 'Apply the store\'s pending schema migrations (before starting upgraded nodes on a shared PostgreSQL database) and print the schema version before and after'
complete -c akm -n "__fish_akm_using_subcommand help; and __fish_seen_subcommand_from mirror" -f -a "status" -d 'Peers, connected or not, lag in entries and seconds, last error'
