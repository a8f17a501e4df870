/* placeholder: replaced by the real module */
#include "kmx_mdp.h"
typedef int kmx_placeholder_t;
