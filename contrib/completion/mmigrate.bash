# bash completion for mmigrate                               -*- shell-script -*-
#
# Install: copy to /usr/share/bash-completion/completions/mmigrate, or
# `source contrib/completion/mmigrate.bash` from ~/.bashrc.
#
# Completes commands, each command's options, plan files (*.yaml, *.yml and
# directories), step ids read from the plan for `reset PLAN <TAB>`, and the
# plan's server names for `server PLAN <TAB>`. Ids and names are read from
# the YAML with awk (block `- id: x` and flow `- {id: x, ...}` forms), so
# nothing is run and no server is contacted.

_mmigrate_commands="validate plan apply status reset log verify steps server help"
_mmigrate_global_opts="--state-dir --output --quiet --verbose --help --version"

# The ids of the steps of plan file $1, one a line.
_mmigrate_step_ids()
{
	[ -r "$1" ] || return 0
	awk '
		/^steps:/ { s = 1; next }
		/^[A-Za-z_]/ { s = 0 }
		s {
			line = $0
			while (match(line, /(^|[-{, ])[ \t]*id:[ \t]*["\047]?[A-Za-z0-9_-]+/)) {
				m = substr(line, RSTART, RLENGTH)
				sub(/.*id:[ \t]*["\047]?/, "", m)
				print m
				line = substr(line, RSTART + RLENGTH)
			}
		}' "$1" 2>/dev/null
}

# The server names of plan file $1 (keys indented under `servers:`).
_mmigrate_server_names()
{
	[ -r "$1" ] || return 0
	awk '
		/^servers:/ { s = 1; ind = -1; next }
		/^[A-Za-z_]/ { s = 0 }
		s && /^[ \t]+[A-Za-z0-9._-]+:/ {
			match($0, /^[ \t]+/)
			if (ind < 0) ind = RLENGTH
			if (RLENGTH == ind) { n = $1; sub(/:.*/, "", n); print n }
		}' "$1" 2>/dev/null
}

_mmigrate_command_opts()
{
	case "$1" in
	validate) echo "--rev" ;;
	plan) echo "--offline --detailed-exitcode --rev" ;;
	apply) echo "--allow-dirty --rev" ;;
	verify) echo "--max-errors --target-version" ;;
	esac
}

_mmigrate_files()
{
	# $1: extension pattern for compgen -X (e.g. '!*.@(yaml|yml)')
	local IFS=$'\n' cur="$2"
	compopt -o filenames 2>/dev/null
	COMPREPLY=($(compgen -d -- "$cur"))
	COMPREPLY+=($(compgen -f -X "$1" -- "$cur"))
}

_mmigrate()
{
	local cur="${COMP_WORDS[COMP_CWORD]}" prev="" cmd="" i w
	local -a args=()

	[ "$COMP_CWORD" -gt 0 ] && prev="${COMP_WORDS[COMP_CWORD - 1]}"
	COMPREPLY=()
	# The command and its positional arguments so far; options and their values skipped.
	for ((i = 1; i < COMP_CWORD; i++)); do
		w="${COMP_WORDS[i]}"
		case "$w" in
		--state-dir | --output | --rev | --max-errors | --target-version) ((i++)) ;;
		-*) ;;
		*) if [ -z "$cmd" ]; then cmd="$w"; else args+=("$w"); fi ;;
		esac
	done

	case "$prev" in
	--state-dir)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -d -- "$cur"))
		return 0 ;;
	--output)
		COMPREPLY=($(compgen -W "text json" -- "$cur"))
		return 0 ;;
	--rev)
		COMPREPLY=($(compgen -W "$(git for-each-ref --format='%(refname:short)' refs/tags refs/heads refs/remotes 2>/dev/null) HEAD" -- "$cur"))
		return 0 ;;
	--max-errors | --target-version)
		return 0 ;;
	esac

	if [[ "$cur" == -* ]]; then
		COMPREPLY=($(compgen -W "$_mmigrate_global_opts $(_mmigrate_command_opts "$cmd")" -- "$cur"))
		return 0
	fi
	if [ -z "$cmd" ]; then
		COMPREPLY=($(compgen -W "$_mmigrate_commands" -- "$cur"))
		return 0
	fi

	shopt -s extglob 2>/dev/null
	case "$cmd" in
	help)
		[ ${#args[@]} -eq 0 ] && COMPREPLY=($(compgen -W "$_mmigrate_commands" -- "$cur")) ;;
	steps) ;;
	verify)
		[ ${#args[@]} -eq 0 ] && _mmigrate_files '!*.zip' "$cur" ;;
	reset)
		if [ ${#args[@]} -eq 0 ]; then
			_mmigrate_files '!*.@(yaml|yml)' "$cur"
		else
			COMPREPLY=($(compgen -W "$(_mmigrate_step_ids "${args[0]}")" -- "$cur"))
		fi ;;
	server)
		case ${#args[@]} in
		0) _mmigrate_files '!*.@(yaml|yml)' "$cur" ;;
		1) COMPREPLY=($(compgen -W "$(_mmigrate_server_names "${args[0]}")" -- "$cur")) ;;
		2) COMPREPLY=($(compgen -W "exports imports uploads jobs" -- "$cur")) ;;
		3) [ "${args[2]}" = jobs ] &&
			COMPREPLY=($(compgen -W "export import extract export_process import_process extract_content" -- "$cur")) ;;
		esac ;;
	validate | plan | apply | status | log)
		[ ${#args[@]} -eq 0 ] && _mmigrate_files '!*.@(yaml|yml)' "$cur" ;;
	esac
	return 0
}

complete -F _mmigrate mmigrate
