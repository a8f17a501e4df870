/* placeholder: replaced by the real module */
#include "kmx_link.h"
typedef int kmx_placeholder_t;
