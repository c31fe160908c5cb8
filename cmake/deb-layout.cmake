# CPack pre-build script (CPACK_PRE_BUILD_SCRIPTS): runs on the staged files
# before the .deb is made. Debian's zsh reads a package's completions from
# /usr/share/zsh/vendor-completions; share/zsh/site-functions, where
# `cmake --install` puts them, is in its fpath only under /usr/local.
set(zsh "${CPACK_TEMPORARY_INSTALL_DIRECTORY}${CPACK_PACKAGING_INSTALL_PREFIX}/share/zsh")
if(EXISTS "${zsh}/site-functions/_mmigrate")
	file(MAKE_DIRECTORY "${zsh}/vendor-completions")
	file(RENAME "${zsh}/site-functions/_mmigrate" "${zsh}/vendor-completions/_mmigrate")
	file(GLOB left "${zsh}/site-functions/*")
	if(NOT left)
		file(REMOVE_RECURSE "${zsh}/site-functions")
	endif()
endif()
