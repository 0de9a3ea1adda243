"""An Odoo 17.0/18.0/19.0 stand-in: XML-RPC, JSON-RPC and JSON-2 over the MRP, stock and maintenance models."""
