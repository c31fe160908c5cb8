/*
 * cli: arguments, commands and exit statuses. The only module that turns
 * MM_E* codes into exit codes (product.md):
 *   0 ok · 1 a step failed · 2 usage or invalid plan · 3 locked ·
 *   4 plan --detailed-exitcode with changes · 130/143 SIGINT/SIGTERM
 */
#ifndef MM_CLI_H
#define MM_CLI_H

int cli_main(int argc, char **argv);

#endif
