/* placeholder: replaced by the real module */
#include "kmx_period.h"
typedef int kmx_placeholder_t;
