"""OPC Foundation NodeSet2 files (MIT, see SOURCE.txt); a package only so that packaging ships them."""
