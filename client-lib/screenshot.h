/* SPDX-License-Identifier: MIT */
/* `sotto explain --screen`: a screenshot of the caller's own session, as an
 * fd of a PNG file, taken the way the desktop offers:
 *   1. the xdg-desktop-portal Screenshot interface on the session bus (the
 *      portal asks the user where the desktop wants it to);
 *   2. else the first installed tool that works: grim (wlroots),
 *      gnome-screenshot, spectacle (KDE), import (ImageMagick, X11);
 *   3. else an error saying what is missing.
 * Nothing here parses the image: the service's worker does. */
#pragma once

#include <stddef.h>

/* Returns an fd open for reading at the start of the PNG (the file is
 * unlinked when it was a temporary one), or -errno with a sentence in err;
 * how names what was used ("portal", "grim", ...). */
int screenshot_take(int *ret_fd, const char **how, char *err, size_t errlen);
