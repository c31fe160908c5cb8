/*
 * The step registry: one line per step type. Adding a step type is one new
 * file in steps/ and one line here (git's commands[], tmux's cmd_entry).
 */
#include "steps.h"

extern const struct step_type step_auth, step_export, step_download, step_upload, step_process, step_verify,
	step_config, step_cleanup, step_extract, step_exec;

static const struct step_type *const step_types[] = {
	&step_auth,   &step_export,  &step_download, &step_upload, &step_process, &step_verify,
	&step_config, &step_cleanup, &step_extract,  &step_exec,   NULL,
};

const struct step_type *const *step_types_all(void)
{
	return step_types;
}
