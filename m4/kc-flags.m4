# SPDX-License-Identifier: GPL-2.0-or-later
# kc-flags.m4: probe compiler and linker flags rather than forcing them.
#
# A flag is kept only when $CC takes it with -Werror, on top of the user's CFLAGS, CPPFLAGS
# and LDFLAGS, so a compiler that merely warns about an unknown or misplaced flag (clang
# does, and gcc does for some -f options) never gets it. GCC accepts any -Wno-foo silently,
# so a -Wno-foo flag is probed as -Wfoo.

# KC_CC_FLAG(FLAG, VARIABLE): append FLAG to VARIABLE when a program compiles and links with it
# and with the flags VARIABLE already holds (GCC warns that -Wformat-security is ignored
# without -Wformat, for one).
AC_DEFUN([KC_CC_FLAG], [
	AS_VAR_PUSHDEF([kc_cv], [kc_cv_cc_flag_$1])
	AC_CACHE_CHECK([whether $CC accepts $1], [kc_cv], [
		kc_save_CFLAGS=$CFLAGS
		CFLAGS="$CFLAGS $$2 -Werror m4_bpatsubst([$1], [^-Wno-], [-W])"
		AC_LINK_IFELSE([AC_LANG_PROGRAM([], [])],
			[AS_VAR_SET([kc_cv], [yes])], [AS_VAR_SET([kc_cv], [no])])
		CFLAGS=$kc_save_CFLAGS])
	AS_VAR_IF([kc_cv], [yes], [AS_VAR_APPEND([$2], [" $1"])])
	AS_VAR_POPDEF([kc_cv])
])

# KC_CC_FLAGS(FLAGS, VARIABLE): KC_CC_FLAG for each of the blank-separated FLAGS.
AC_DEFUN([KC_CC_FLAGS], [m4_foreach_w([kc_flag], [$1], [KC_CC_FLAG(kc_flag, [$2])])])

# KC_LD_FLAG(FLAG, VARIABLE): append FLAG to VARIABLE when a program links with it.
AC_DEFUN([KC_LD_FLAG], [
	AS_VAR_PUSHDEF([kc_cv], [kc_cv_ld_flag_$1])
	AC_CACHE_CHECK([whether the linker accepts $1], [kc_cv], [
		kc_save_LDFLAGS=$LDFLAGS
		kc_save_CFLAGS=$CFLAGS
		LDFLAGS="$LDFLAGS $1"
		CFLAGS="$CFLAGS -Werror"
		AC_LINK_IFELSE([AC_LANG_PROGRAM([], [])],
			[AS_VAR_SET([kc_cv], [yes])], [AS_VAR_SET([kc_cv], [no])])
		LDFLAGS=$kc_save_LDFLAGS
		CFLAGS=$kc_save_CFLAGS])
	AS_VAR_IF([kc_cv], [yes], [AS_VAR_APPEND([$2], [" $1"])])
	AS_VAR_POPDEF([kc_cv])
])

# KC_FORTIFY_SOURCE(LEVEL, VARIABLE): append -D_FORTIFY_SOURCE=LEVEL to VARIABLE unless the
# user's flags already say something about _FORTIFY_SOURCE (set, or -U to turn it off), or
# the compiler predefines it (redefinition warning under -Werror), or the user's CFLAGS do not
# optimise (__OPTIMIZE__ undefined; fortification needs the optimiser, and not every glibc
# warns about it): the user's choice stands.
AC_DEFUN([KC_FORTIFY_SOURCE], [
	AC_CACHE_CHECK([whether to add -D_FORTIFY_SOURCE=$1], [kc_cv_fortify_source], [
		AS_CASE([" $CFLAGS $CPPFLAGS "],
			[*_FORTIFY_SOURCE*], [kc_cv_fortify_source="no (set by the user)"],
			[
			kc_save_CPPFLAGS=$CPPFLAGS
			kc_save_CFLAGS=$CFLAGS
			CPPFLAGS="$CPPFLAGS -D_FORTIFY_SOURCE=$1"
			CFLAGS="$CFLAGS -Werror"
			AC_COMPILE_IFELSE([AC_LANG_PROGRAM([[#include <string.h>
#ifndef __OPTIMIZE__
#error _FORTIFY_SOURCE needs optimisation
#endif]],
					[[char b[4]; memcpy(b, "abc", 4); return b[0];]])],
				[kc_cv_fortify_source=yes],
				[kc_cv_fortify_source="no (no optimisation, or predefined)"])
			CPPFLAGS=$kc_save_CPPFLAGS
			CFLAGS=$kc_save_CFLAGS])])
	AS_IF([test "x$kc_cv_fortify_source" = xyes],
		[AS_VAR_APPEND([$2], [" -D_FORTIFY_SOURCE=$1"])])
])
