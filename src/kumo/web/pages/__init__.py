"""One module per area of the dashboard, each with its APIRouter of DashboardRoutes."""
